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
import re
import zipfile
from typing import Iterable, List, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from glmix_mm.registry import register_hook

TMP_SUFFIX = '.tmp'
# Names of the periodic checkpoints (CheckpointHook's default filename_tmpl), newest = largest.
PERIODIC_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


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


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (not missing, not truncated).

    ``torch.save`` writes a zip archive whose directory is at the very end of the file, so a
    truncated file has no readable directory. This reads the directory only, not the tensors.
    """
    if not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def newest_complete_checkpoint(dirs: Iterable[str]) -> Optional[str]:
    """The newest complete ``epoch_N.pth`` / ``iter_N.pth`` in ``dirs`` (largest N), if any."""
    candidates: List[tuple] = []
    for folder in dict.fromkeys(d for d in dirs if d and osp.isdir(d)):
        for name in os.listdir(folder):
            match = PERIODIC_NAME.match(name)
            if match:
                path = osp.join(folder, name)
                candidates.append((int(match.group(2)), osp.getmtime(path), path))
    for _, _, path in sorted(candidates, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None


@register_hook
class SafeCheckpointHook(CheckpointHook):
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
    * leftover ``*.pth.tmp`` files of a killed run are removed when training starts.

    :class:`~glmix_mm.engine.ResumableTrainingHook` turns a config's plain ``CheckpointHook``
    into this one; it adds no state of its own, only changes how files are written.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process():
            for leftover in glob.glob(osp.join(self.out_dir, f'*.pth{TMP_SUFFIX}')):
                os.remove(leftover)

    def _is_local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        if not self._is_local():
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        outdated = self._book_keep(runner, step)
        filename = self.filename_tmpl.format(step)
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
        if not is_main_process():
            return
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in outdated:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)

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
