"""glmix_mm: GLNet (GLMix) and Conformer backbones for the OpenMMLab 2.x libraries.

Importing the package registers every model and hook (see :mod:`glmix_mm.registry`) and makes
MMEngine load local checkpoints safely: training state and upstream releases load, code in a
file never runs (see :mod:`glmix_mm.models.checkpoint`). :class:`trust_checkpoint` allows full
unpickling of one file the user trusts.
"""
from .compat import check_torch_floor

check_torch_floor()  # one line naming the floor, before anything needs a newer torch

from .engine import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .models.safe_load import trust_checkpoint
from .version import __version__

__all__ = ['__version__', 'trust_checkpoint']
