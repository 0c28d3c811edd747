"""Random number generators' states saved in checkpoints and restored on resume."""
from typing import List, Optional

from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from glmix_mm.registry import register_hook

from ..mmengine_internals import resumes
from ..random_states import rng_state, set_rng_state


def gather_rng_states(runner) -> None:
    """Collect every rank's random states for the checkpoint being saved (a collective call:
    every rank calls it, before ``runner.save_checkpoint``, which runs on rank 0 only).

    Does nothing in a single process or without an :class:`RNGStateHook`.
    """
    hook = next((h for h in runner.hooks if isinstance(h, RNGStateHook)), None)
    if hook is not None and get_world_size() > 1:
        hook.gathered = all_gather_object(rng_state())


@register_hook
class RNGStateHook(Hook):
    """Save the random number generators' states in checkpoints and restore them on resume.

    MMEngine re-seeds a resumed run but does not restore the generators, so drop path, RoI
    sampling and data augmentation draw other numbers after ``--resume`` than the uninterrupted
    run would have. With this hook a run resumed from a checkpoint continues with the same
    random stream and ends with the same weights (with data loading in the main process or with
    non-persistent workers, whose seeds MMEngine derives from the config seed). Under DDP each
    rank's states are saved (collected by
    :class:`~glmix_mm.engine.SafeCheckpointHook` before it writes) and each rank resumes with
    its own, if the number of processes is the same; otherwise with rank 0's.
    """
    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.gathered: Optional[List[dict]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = rng_state()
        if self.gathered is not None and len(self.gathered) == get_world_size():
            checkpoint['rng_state_per_rank'] = self.gathered
        self.gathered = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not resumes(runner):  # fine-tuning from load_from: fresh streams
            return
        state: Optional[dict] = checkpoint.get('rng_state')
        if state is None:
            print_log('The checkpoint has no random generator states (saved without '
                      'RNGStateHook): the resumed run draws other random numbers.',
                      logger='current', level=30)
            return
        per_rank = checkpoint.get('rng_state_per_rank')
        if per_rank is not None and len(per_rank) == get_world_size():
            state = per_rank[get_rank()]
        set_rng_state(state)
