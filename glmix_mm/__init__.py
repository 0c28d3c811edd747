"""glmix_mm: GLNet (GLMix) and Conformer backbones for the OpenMMLab 2.x libraries.

Importing the package registers every model and hook (see :mod:`glmix_mm.registry`) and makes
MMEngine load local checkpoints under PyTorch >= 2.6 (see :mod:`glmix_mm.models.checkpoint`).
"""
from .engine import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .version import __version__

__all__ = ['__version__']
