"""GLNet and Conformer as timm models (the optional extra: ``pip install -e ".[timm]"``).

``import glmix_mm.timm`` registers, with timm's ``register_model``, the released ImageNet
classifiers under upstream's names: ``glnet_stl``, ``glnet_stl_paramslot``, ``glnet_4g``,
``glnet_9g``, ``glnet_16g``, ``glnet_4g_tklb``, ``glnet_9g_tklb``
(:mod:`glmix_mm.timm.glnet`) and ``conformer_tiny_patch16``, ``conformer_small_patch16``,
``conformer_small_patch32``, ``conformer_base_patch16`` (:mod:`glmix_mm.timm.conformer`).
Each is the backbone of :mod:`glmix_mm.models` with the authors' classifier on top, built by
timm's ``build_model_with_cfg``, so that timm's own machinery applies:

* ``timm.create_model(name, features_only=True, out_indices=...)``: the maps at strides 4 to
  32 (c2-c5) through timm's ``FeatureGetterNet`` and the models' ``forward_intermediates``,
  with their ``feature_info``; this is what torchvision's FPN and Hugging Face's
  ``TimmBackbone`` take;
* ``pretrained=True, pretrained_cfg_overlay=dict(file=PATH)``: the released file as downloaded,
  through timm's ``custom_load`` hook into glmix_mm's safe loader and fit check (nothing in a
  file runs; a file that does not fit is refused with the message MMEngine gives).

docs/timm.md has the commands. timm itself is not imported by ``import glmix_mm``.
"""
from mmengine.utils import digit_version

#: The oldest timm these models are built with (``forward_intermediates`` and the ``getter``
#: feature extractor, ``custom_load``; tested: 1.0.30 on Python 3.8, 1.0.31).
TIMM_FLOOR = '1.0.30'

try:
    import timm
except ImportError:
    raise ImportError(f'glmix_mm.timm needs timm >= {TIMM_FLOOR}, which is not installed: '
                      'pip install -e ".[timm]"') from None
if digit_version(timm.__version__) < digit_version(TIMM_FLOOR):
    raise ImportError(f'glmix_mm.timm needs timm >= {TIMM_FLOOR} (found {timm.__version__}): '
                      f'pip install -U "timm>={TIMM_FLOOR}"')

from glmix_mm.timm.conformer import TimmConformer  # noqa: E402 (registers the models)
from glmix_mm.timm.glnet import TimmGLNet  # noqa: E402

__all__ = ['TIMM_FLOOR', 'TimmConformer', 'TimmGLNet']
