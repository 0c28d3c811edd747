"""Every use of MMEngine's private API in glmix_mm, in one place; written against MMEngine
0.10.7 (:data:`WRITTEN_AGAINST`).

Resuming and interrupt-safe checkpoints need a few things MMEngine keeps private: which
checkpoint the runner will load and whether it resumes (``Runner._load_from``,
``Runner._resume``), whether it trains without building its train loop
(``Runner._train_loop``), the write of one checkpoint (``CheckpointHook.
_save_checkpoint_with_step``) and the epoch counter of a train loop (``EpochBasedTrainLoop.
_epoch``). The rest of glmix_mm reaches them only through the functions and the class below.
:func:`missing_internals` names those an installed MMEngine lacks;
``tests/test_engine/test_mmengine_internals.py`` fails with that list when MMEngine renames one.
"""
from typing import List, Optional

from mmengine.hooks import CheckpointHook
from mmengine.runner import BaseLoop, EpochBasedTrainLoop

#: The MMEngine version whose private names this module uses.
WRITTEN_AGAINST = '0.10.7'
#: ``(owner, private name, what glmix_mm uses it for)``.
PRIVATE_NAMES = (
    ('Runner', '_load_from', 'the checkpoint that load_from / --resume loads'),
    ('Runner', '_resume', 'whether the runner resumes'),
    ('Runner', '_train_loop', 'whether the train loop is built (the runner trains)'),
    ('CheckpointHook', '_save_checkpoint_with_step', 'writing one checkpoint'),
    ('EpochBasedTrainLoop', '_epoch', 'the epochs a train loop has completed'),
)


def checkpoint_to_load(runner) -> Optional[str]:
    """The checkpoint the runner will load (``load_from``, or the one ``--resume`` names)."""
    return runner._load_from


def set_checkpoint_to_load(runner, path: str) -> None:
    """Make the runner load (or resume from) ``path``."""
    runner._load_from = path


def resumes(runner) -> bool:
    """Whether the runner resumes training (``resume=True``)."""
    return bool(getattr(runner, '_resume', False))


def cancel_resume(runner) -> None:
    """Start from the beginning instead of resuming (nothing to resume from)."""
    runner._resume = False


def trains(runner) -> bool:
    """Whether the runner is training: ``runner.train()`` builds its train loop before any hook
    runs, ``runner.test()`` and ``runner.val()`` leave it a config (asking builds nothing)."""
    return isinstance(runner._train_loop, BaseLoop)


def save_checkpoint_now(hook: CheckpointHook, runner, step: int, meta: dict) -> None:
    """Have ``hook`` write the checkpoint of ``step`` with ``meta``, as at its interval."""
    hook._save_checkpoint_with_step(runner, step, meta)


def end_epoch(loop: EpochBasedTrainLoop) -> None:
    """Count the epoch in progress as completed (what ``EpochBasedTrainLoop.run_epoch`` does
    at its end)."""
    loop._epoch += 1


class StepCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` whose write of one checkpoint (MMEngine's private
    ``_save_checkpoint_with_step``, called at every interval) is :meth:`save_step`, for
    subclasses to override."""

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        self.save_step(runner, step, meta)

    def save_step(self, runner, step: int, meta: dict) -> None:
        """Write the checkpoint of ``step`` as MMEngine does."""
        super()._save_checkpoint_with_step(runner, step, meta)


def missing_internals(runner) -> List[str]:
    """The private names of :data:`PRIVATE_NAMES` that the installed MMEngine lacks, each with
    its use; ``runner`` is a Runner with a train loop config (its loop is built here)."""
    owners = dict(Runner=runner, CheckpointHook=CheckpointHook,
                  EpochBasedTrainLoop=runner.train_loop)
    return [f'{owner}.{name} ({use})' for owner, name, use in PRIVATE_NAMES
            if not hasattr(owners[owner], name)]
