"""Checkpoints that an interruption cannot break.

MMEngine's ``CheckpointHook`` writes a checkpoint straight to its final name, deletes the oldest
kept checkpoint *before* writing the new one, and rewrites ``last_checkpoint`` in place. A
Ctrl-C, a cluster preemption or a full disk during the write leaves a truncated file, and with
``max_keep_ckpts=1`` a ``last_checkpoint`` naming a file that is already gone.
:class:`SafeCheckpointHook` changes only the order and the way files are written: the new
checkpoint goes to a temporary file, is flushed to disk and renamed into place; only then is
``last_checkpoint`` replaced (also by a rename) and are the outdated checkpoints removed.
"""
import glob
import os
import os.path as osp
from typing import List

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend

from glmix_mm.registry import register_hook

from ..mmengine_internals import StepCheckpointHook
from ..resume import MID_EPOCH_NAME
from .rng_state_hook import gather_rng_states

TMP_SUFFIX = '.tmp'


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp_path: str, path: str) -> None:
    """Flush ``tmp_path`` to disk and rename it to ``path`` in one atomic step.

    Readers see either the previous ``path`` or the complete new one, never a partial file.
    """
    _fsync_path(tmp_path)
    os.replace(tmp_path, path)
    _fsync_path(osp.dirname(osp.abspath(path)))  # make the rename itself durable


def write_text_atomic(path: str, text: str) -> None:
    """Replace the text file ``path`` with ``text`` atomically (temporary file + rename)."""
    tmp_path = path + TMP_SUFFIX
    with open(tmp_path, 'w') as f:
        f.write(text)
    commit_file(tmp_path, path)


@register_hook
class SafeCheckpointHook(StepCheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` with interrupt-safe writes to local disk.

    Takes the same arguments and saves the same files at the same times. Differences, for
    checkpoints on a local file system (other backends are written as MMEngine does):

    * a checkpoint is written to ``<name>.tmp``, flushed with ``fsync`` and renamed to
      ``<name>``, so ``<name>`` is never a partial file;
    * ``last_checkpoint`` is replaced (by a rename) only after the checkpoint it names is
      complete;
    * checkpoints beyond ``max_keep_ckpts`` are removed only after that, so an interrupted write
      always leaves the previous checkpoint on disk (for a moment, ``max_keep_ckpts + 1``
      checkpoints take up disk space);
    * leftover ``*.pth.tmp`` files of a killed run are removed when training starts;
    * :meth:`save_mid_epoch` writes the checkpoint of an interruption inside an epoch
      (``epoch_E_iter_I.pth``, see :class:`~glmix_mm.engine.ResumableTrainingHook`); the next
      periodic checkpoint replaces it;
    * under DDP, every rank's random states go into the checkpoint
      (:class:`~glmix_mm.engine.RNGStateHook`).

    Our configs name it in ``default_hooks.checkpoint``; ``tools/train.py`` puts it in place of
    a config's plain ``CheckpointHook``
    (:func:`glmix_mm.runner.use_safe_checkpoint_hook`). It adds no state of its own.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process():
            for leftover in glob.glob(osp.join(self.out_dir, f'*.pth{TMP_SUFFIX}')):
                os.remove(leftover)

    def _is_local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def save_step(self, runner, step: int, meta: dict) -> None:
        if not self._is_local():
            gather_rng_states(runner)
            super().save_step(runner, step, meta)
            return
        outdated = self._book_keep(runner, step)
        self._write(runner, self.filename_tmpl.format(step), meta)
        if not is_main_process():
            return
        stale = [self.filename_tmpl.format(old) for old in outdated]
        stale += [osp.basename(p) for p in glob.glob(
            osp.join(self.out_dir, MID_EPOCH_NAME.format('*', '*')))]
        for name in stale:
            path = osp.join(self.out_dir, name)
            if osp.isfile(path) and path != self.last_ckpt:
                os.remove(path)

    def save_mid_epoch(self, runner, batches_done: int) -> str:
        """Save the state after ``batches_done`` iterations of the epoch in progress as
        ``epoch_E_iter_I.pth``; its path. Call it on every rank."""
        filename = MID_EPOCH_NAME.format(runner.epoch + 1, batches_done)
        meta = dict(epoch=runner.epoch, iter=runner.iter + 1)
        if self._is_local():
            self._write(runner, filename, meta)
        else:  # as MMEngine writes: no temporary file, and no last_checkpoint to point at it
            gather_rng_states(runner)
            runner.save_checkpoint(self.out_dir, filename, meta=meta, by_epoch=self.by_epoch,
                                   backend_args=self.backend_args, **self.args)
            self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        return self.last_ckpt

    def _write(self, runner, filename: str, meta: dict) -> None:
        """Write ``filename`` through a temporary file, then point ``last_checkpoint`` at it."""
        gather_rng_states(runner)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp_path = self.last_ckpt + TMP_SUFFIX
        try:
            runner.save_checkpoint(  # writes on the main process only
                self.out_dir,
                filename + TMP_SUFFIX,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if is_main_process():
                commit_file(tmp_path, self.last_ckpt)
        except BaseException:  # interrupted or failed: the previous checkpoints stay valid
            if is_main_process() and osp.exists(tmp_path):
                os.remove(tmp_path)
            raise
        if is_main_process():
            write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)

    def _book_keep(self, runner, step: int) -> List[int]:
        """Record ``step`` among the kept checkpoints (as MMEngine does, in the message hub, so
        that a resumed run knows them); return the steps whose files are now outdated."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return []
        outdated = []
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return outdated
