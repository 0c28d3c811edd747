"""Training that Ctrl-C or a cluster preemption (SIGTERM, Slurm's SIGUSR1 warning) cannot
leave unresumable.

:class:`ResumableTrainingHook` (in every glmix_mm config through ``configs/_base_/
glnet_common.py``, and added by ``tools/train.py`` to any other config):

* on SIGINT, SIGTERM or SIGUSR1, lets the iteration in progress finish, then saves a
  checkpoint of it and stops at that iteration boundary: an iteration-based run
  (``IterBasedTrainLoop``) and an epoch-based run with
  :class:`~glmix_mm.engine.ResumableEpochBasedTrainLoop` (our configs' loop) lose nothing.
  With MMEngine's plain ``EpochBasedTrainLoop``, which resumes at epoch boundaries only, the
  epoch in progress is lost, unless the signal came in its last iteration or during
  validation, when the completed epoch is saved. A second signal stops at once (a checkpoint
  being written is then discarded, the previous one stays);
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
from mmengine.dist import all_reduce, barrier, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from glmix_mm.registry import register_hook

from ..loops import ResumableEpochBasedTrainLoop
from ..mmengine_internals import resumes, save_checkpoint_now, trains
from ..resume import is_complete_checkpoint, latest_checkpoint, resolve_resume
from .safe_checkpoint_hook import SafeCheckpointHook

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


def checkpoint_hook(runner) -> Optional[CheckpointHook]:
    """The runner's checkpoint hook, if it has one."""
    return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)


@register_hook
class ResumableTrainingHook(Hook):
    """Stop training cleanly on Ctrl-C / SIGTERM and keep every run resumable.

    See :mod:`glmix_mm.engine.hooks.resumable_training_hook`. When it stops, training raises
    :class:`TrainingInterrupted` (a ``KeyboardInterrupt``) naming the checkpoint ``--resume``
    will use. Under DDP the ranks agree on the stop after every iteration (one all-reduce of a
    number), so they stop at the same iteration.

    Args:
        signals (tuple[str]): Signals that request a stop. Defaults to SIGINT, SIGTERM and
            SIGUSR1 (what ``sbatch --signal=USR1@SECONDS`` sends before a job's time is up).
    """
    priority = 'LOWEST'  # after CheckpointHook and ParamSchedulerHook in each stage

    def __init__(self, signals=('SIGINT', 'SIGTERM', 'SIGUSR1')) -> None:
        self.signals = [getattr(signal, name) for name in signals]
        self._previous: Dict[int, object] = {}
        self._requested = 0
        self._announced = False
        self._pid = None

    # -- set-up ------------------------------------------------------------------------------
    def before_run(self, runner) -> None:
        if not trains(runner):  # testing or validating
            return
        hook = checkpoint_hook(runner)
        if hook is not None and not isinstance(hook, SafeCheckpointHook):
            print_log(f'default_hooks.checkpoint is a {type(hook).__name__}: an interruption '
                      'while it writes can leave a truncated checkpoint. Use '
                      "type='SafeCheckpointHook' (tools/train.py does).", logger='current',
                      level=WARNING)
        if resumes(runner):
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
        elif batch_idx + 1 < len(runner.train_loop.dataloader) and self._resumes_mid_epoch(
                runner):
            self.restore_signal_handlers()
            path = checkpoint_hook(runner).save_mid_epoch(runner, batch_idx + 1)
            print_log(f'Saved {path} before stopping.', logger='current')
            self._stop(runner, signum, None, None)
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

    @staticmethod
    def _resumes_mid_epoch(runner) -> bool:
        return isinstance(runner.train_loop, ResumableEpochBasedTrainLoop) and isinstance(
            checkpoint_hook(runner), SafeCheckpointHook)

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
            save_checkpoint_now(hook, runner, step, meta)
        return path

    def _stop(self, runner, signum: int, step: Optional[int], meta: Optional[dict],
              lost: str = '') -> None:
        self.restore_signal_handlers()
        if step:
            self._save(runner, step, meta)
        if get_world_size() > 1:
            # No rank leaves before rank 0 has written the checkpoint: a launcher that ends the
            # job when one task exits (srun --kill-on-bad-exit) would cut the write short.
            barrier()
        resume_from = latest_checkpoint(runner.work_dir)
        print_log(
            f'Training stopped by {signal.Signals(signum).name}' + (f'; {lost}' if lost else '') +
            (f'. Continue with --resume (from {resume_from}).' if resume_from else
             '. No checkpoint was saved yet: --resume would start over.'),
            logger='current', level=WARNING)
        raise TrainingInterrupted(signum, resume_from)
