"""This process's random number generators: their states, taken and restored together
(:class:`~glmix_mm.engine.RNGStateHook` saves them in checkpoints,
:class:`~glmix_mm.engine.ResumableEpochBasedTrainLoop` keeps them across a data loader's start)."""
import random

import numpy as np
import torch


def rng_state() -> dict:
    """This process's states of torch (CPU and CUDA), numpy and Python's ``random``."""
    return dict(
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        numpy=np.random.get_state(),
        python=random.getstate())


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state['torch'])
    if state['cuda'] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])
