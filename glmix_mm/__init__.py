"""glmix_mm: GLNet (GLMix) and Conformer backbones for the OpenMMLab 2.x libraries.

Importing the package registers every model (see :mod:`glmix_mm.registry`).
"""
from .models import *  # noqa: F401,F403
from .version import __version__

__all__ = ['__version__']
