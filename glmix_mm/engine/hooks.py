"""Hooks for MMEngine runners."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from glmix_mm.registry import register_hook


@register_hook
class RNGStateHook(Hook):
    """Save the random number generators' states in checkpoints and restore them on resume.

    MMEngine re-seeds a resumed run but does not restore the generators, so drop path, RoI
    sampling and data augmentation draw other numbers after ``--resume`` than the uninterrupted
    run would have. With this hook a single-process run resumed from a checkpoint continues with
    the same random stream and ends with the same weights (with data loading in the main process
    or with non-persistent workers, whose seeds MMEngine derives from the config seed). Under DDP
    every rank resumes with rank 0's states.
    """
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = dict(
            torch=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            numpy=np.random.get_state(),
            python=random.getstate())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):  # fine-tuning from load_from: fresh streams
            return
        state: Optional[dict] = checkpoint.get('rng_state')
        if state is None:
            print_log('The checkpoint has no random generator states (saved without '
                      'RNGStateHook): the resumed run draws other random numbers.',
                      logger='current', level=30)
            return
        torch.set_rng_state(state['torch'])
        if state['cuda'] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
        np.random.set_state(state['numpy'])
        random.setstate(state['python'])
