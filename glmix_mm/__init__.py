"""glmix_mm: GLNet (GLMix) and Conformer backbones for the OpenMMLab 2.x libraries.

Importing the package registers every model and hook (see :mod:`glmix_mm.registry`) and makes
MMEngine load checkpoints safely (:func:`glmix_mm.checkpoint.install_safe_loaders`): training
state and upstream releases load, code in a file never runs. :class:`trust_checkpoint` allows
full unpickling of one file the user trusts.
"""
from .compat import check_torch_floor, keep_mmpretrain_importable

check_torch_floor()  # one line naming the floor, before anything needs a newer torch
keep_mmpretrain_importable()  # beside transformers >= 4.52, before the models import MMPretrain

from .checkpoint import install_safe_loaders, trust_checkpoint  # noqa: E402
from .engine import *  # noqa: F401,F403,E402
from .models import *  # noqa: F401,F403,E402
from .version import __version__  # noqa: E402

install_safe_loaders()

__all__ = ['__version__', 'trust_checkpoint']
