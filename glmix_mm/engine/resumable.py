"""Training that Ctrl-C or a cluster preemption (SIGTERM) cannot leave unresumable.

:class:`ResumableTrainingHook` (in every glmix_mm config through ``configs/_base_/
glnet_common.py``, and added by ``tools/train.py`` to any other config):

* makes the config's ``CheckpointHook`` write atomically (:class:`SafeCheckpointHook`);
* on SIGINT or SIGTERM, lets the iteration in progress finish, then stops at that iteration
  boundary. An iteration-based run (``IterBasedTrainLoop``) first saves a checkpoint of the
  iteration just completed, so it loses nothing; an epoch-based run loses the epoch in
  progress (MMEngine resumes epoch-based runs at epoch boundaries only: a mid-epoch
  checkpoint would repeat the epoch's first iterations), unless the signal came in its last
  iteration or during validation, when the completed epoch is saved. A second signal stops at
  once (a checkpoint being written is then discarded, the previous one stays);
* with ``--resume`` and no explicit file, resumes from the checkpoint ``last_checkpoint``
  names, or, if that file is missing or incomplete, from the newest complete checkpoint in
  the work dir, and says so; with no checkpoint at all it says that training starts over.
"""
import os
import os.path as osp
import signal
import threading
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop, IterBasedTrainLoop

from glmix_mm.registry import register_hook

from .safe_checkpoint import SafeCheckpointHook, is_complete_checkpoint, newest_complete_checkpoint

WARNING = 30


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped cleanly after a signal.

    Args:
        signum (int): The signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        checkpoint (str, optional): The checkpoint ``--resume`` will continue from.
    """

    def __init__(self, signum: int, checkpoint: Optional[str]) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.checkpoint = checkpoint
        super().__init__(f'training stopped by {self.signal_name}')


class ResumeError(RuntimeError):
    """``--resume FILE`` names a file that is missing or incomplete."""


def _describe(path: str) -> str:
    return 'does not exist' if not osp.isfile(path) else \
        'is incomplete (truncated by an interrupted write?)'


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """What ``--resume`` continues from: the complete checkpoint ``last_checkpoint`` names, or
    else the newest complete ``epoch_N`` / ``iter_N`` checkpoint in ``work_dir``."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = open(pointer).read().strip() if osp.isfile(pointer) else ''
    if named and is_complete_checkpoint(named):
        return named
    return newest_complete_checkpoint([work_dir, osp.dirname(named)])


def resolve_resume(runner) -> None:
    """Point an auto-resuming runner (``resume=True``, ``load_from=None``) at the checkpoint to
    continue from; check an explicit one. Called before MMEngine loads it.

    Raises:
        ResumeError: An explicit ``load_from`` to resume from is missing or incomplete.
    """
    work_dir = runner.work_dir
    if runner._load_from is not None:
        path = runner._load_from
        if is_complete_checkpoint(path) or '://' in path:
            return
        newest = newest_complete_checkpoint([work_dir, osp.dirname(path)])
        raise ResumeError(
            f'Cannot resume from {path}: the file {_describe(path)}.' +
            (f' The newest complete checkpoint is {newest}; pass it to --resume, or --resume '
             'without a file to take the newest one.' if newest else ''))
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = open(pointer).read().strip() if osp.isfile(pointer) else ''
    if named and is_complete_checkpoint(named):
        print_log(f'Resuming from {named} (named by {pointer}).', logger='current')
        runner._load_from = named
        return
    newest = newest_complete_checkpoint([work_dir, osp.dirname(named)])
    reason = f'{pointer} names {named}, which {_describe(named)}' if named else \
        f'there is no {pointer}'
    if newest:
        print_log(f'--resume: {reason}; resuming from {newest}, the newest complete '
                  'checkpoint in the work dir.', logger='current', level=WARNING)
        runner._load_from = newest
    else:
        print_log(f'--resume: {reason}, and the work dir holds no complete checkpoint: '
                  'training starts from the beginning.', logger='current', level=WARNING)
        runner._resume = False


def checkpoint_hook(runner) -> Optional[CheckpointHook]:
    """The runner's checkpoint hook, if it has one."""
    return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)


@register_hook
class ResumableTrainingHook(Hook):
    """Stop training cleanly on Ctrl-C / SIGTERM and keep every run resumable.

    See :mod:`glmix_mm.engine.resumable`. When it stops, training raises
    :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) naming the checkpoint ``--resume``
    will use. Under DDP the ranks agree on the stop after every iteration (one all-reduce of a
    number), so they stop at the same iteration.

    Args:
        signals (tuple[str]): Signals that request a stop. Defaults to SIGINT and SIGTERM.
    """
    priority = 'LOWEST'  # after CheckpointHook and ParamSchedulerHook in each stage

    def __init__(self, signals=('SIGINT', 'SIGTERM')) -> None:
        self.signals = [getattr(signal, name) for name in signals]
        self._previous: Dict[int, object] = {}
        self._requested = 0
        self._announced = False
        self._pid = None

    # -- set-up ------------------------------------------------------------------------------
    def before_run(self, runner) -> None:
        if not isinstance(runner._train_loop, BaseLoop):  # testing or validating
            return
        for hook in runner.hooks:
            if type(hook) is CheckpointHook:
                hook.__class__ = SafeCheckpointHook  # same state, atomic writes
        if getattr(runner, '_resume', False):
            resolve_resume(runner)

    def before_train(self, runner) -> None:
        self._requested, self._announced = 0, False
        if threading.current_thread() is not threading.main_thread():
            return
        self._pid = os.getpid()
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def after_train(self, runner) -> None:
        self.restore_signal_handlers()

    def restore_signal_handlers(self) -> None:
        """Put back the handlers that were installed before training."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame) -> None:
        # Only set a flag: logging or printing here could re-enter an I/O call it interrupted.
        if os.getpid() != self._pid:
            return  # a forked data-loader worker: the main process decides and shuts it down
        if self._requested:
            self.restore_signal_handlers()
            raise KeyboardInterrupt(f'{signal.Signals(signum).name} received twice')
        self._requested = signum

    # -- stopping ----------------------------------------------------------------------------
    def interrupt_requested(self) -> int:
        """The signal received and not yet acted on (0 if none)."""
        return self._requested

    def _pending(self, runner, sync: bool = True) -> int:
        signum = self._requested
        if sync and get_world_size() > 1:
            flag = torch.tensor([signum], dtype=torch.int64)
            all_reduce(flag, op='max')
            signum = int(flag.item())
        if signum and not self._announced:
            self._announced = True
            print_log(f'{signal.Signals(signum).name} received: stopping at this iteration '
                      'boundary (send it again to stop at once).', logger='current',
                      level=WARNING)
        return signum

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        signum = self._pending(runner)
        if not signum:
            return
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            done = runner.iter + 1
            self._stop(runner, signum, done, dict(epoch=runner.epoch, iter=done))
        elif batch_idx + 1 < len(runner.train_loop.dataloader):
            self._stop(runner, signum, None, None,
                       f'the epoch in progress (epoch {runner.epoch + 1}, '
                       f'{batch_idx + 1} of {len(runner.train_loop.dataloader)} iterations) '
                       'is lost')
        # else: the epoch is complete; after_train_epoch saves it and stops.

    def after_train_epoch(self, runner) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            return
        signum = self._pending(runner)
        if signum:
            done = runner.epoch + 1
            self._stop(runner, signum, done, dict(epoch=done, iter=runner.iter))

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # Validation during training (single process: under DDP the ranks may see the signal
        # at different validation steps, and they meet again at the next training iteration).
        if not self._previous or get_world_size() > 1:
            return
        signum = self._pending(runner, sync=False)
        if not signum:
            return
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            self._stop(runner, signum, runner.iter, dict(epoch=runner.epoch, iter=runner.iter))
        else:
            self._stop(runner, signum, runner.epoch, dict(epoch=runner.epoch, iter=runner.iter))

    def _save(self, runner, step: int, meta: dict) -> Optional[str]:
        hook = checkpoint_hook(runner)
        if hook is None:
            print_log('No CheckpointHook: nothing saved at the interruption.', logger='current',
                      level=WARNING)
            return None
        by_iter = isinstance(runner.train_loop, IterBasedTrainLoop)
        if hook.by_epoch == by_iter:  # names would not match the loop's counter
            return None
        path = osp.join(hook.out_dir, hook.filename_tmpl.format(step))
        if hook.last_ckpt != path or not is_complete_checkpoint(path):
            print_log(f'Saving {path} before stopping.', logger='current')
            hook._save_checkpoint_with_step(runner, step, meta)
        return path

    def _stop(self, runner, signum: int, step: Optional[int], meta: Optional[dict],
              lost: str = '') -> None:
        self.restore_signal_handlers()
        if step:
            self._save(runner, step, meta)
        resume_from = latest_checkpoint(runner.work_dir)
        print_log(
            f'Training stopped by {signal.Signals(signum).name}' + (f'; {lost}' if lost else '') +
            (f'. Continue with --resume (from {resume_from}).' if resume_from else
             '. No checkpoint was saved yet: --resume would start over.'),
            logger='current', level=WARNING)
        raise TrainingInterrupted(signum, resume_from)
