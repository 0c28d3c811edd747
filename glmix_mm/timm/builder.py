"""What the timm forms of GLNet and Conformer share: their registration, their pretrained
configs, building through timm's ``build_model_with_cfg``, and reading released files through
glmix_mm's loader (timm's ``custom_load`` hook)."""
import dataclasses
import sys
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, register_model, resolve_pretrained_cfg

from glmix_mm.checkpoint import StateDict, load_pretrained

# The classes of the released classifiers (ImageNet-1k).
PRETRAINED_CLASSES = 1000
# features_only: the four maps (c2-c5) through timm's FeatureGetterNet, which prunes what the
# requested maps do not need and calls ``forward_intermediates``.
FEATURE_CFG = dict(out_indices=(0, 1, 2, 3), feature_cls='getter')


def pretrained_cfg(first_conv: str, classifier, **kwargs) -> dict:
    """A timm pretrained config of a released ImageNet classifier: evaluation at 224x224,
    bicubic resize of the short side to 256 and a 224 centre crop (both authors' evaluation),
    ImageNet mean and std. No ``url``: the weights are files the user downloads."""
    return dict(
        url='', num_classes=PRETRAINED_CLASSES, input_size=(3, 224, 224), pool_size=(7, 7),
        crop_pct=0.875, interpolation='bicubic', mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD, first_conv=first_conv, classifier=classifier, **kwargs)


def check_options(model: str, global_pool: str, output_stride: Optional[int],
                  options: Dict[str, object]) -> None:
    """Refuse, with one line, timm options these models do not have."""
    if global_pool != 'avg':
        raise ValueError(f'{model} pools by averaging, as released: global_pool must be '
                         f"'avg', got {global_pool!r}.")
    if output_stride not in (None, 32):
        raise ValueError(f'{model} has no dilated form: its maps are at strides 4 to 32 '
                         f'(output_stride=32), got output_stride={output_stride!r}.')
    for name in ('out_indices', 'out_norm'):
        if name in options:
            raise ValueError(f'{model}: {name} is not an option of the timm model; select maps '
                             'with timm.create_model(..., features_only=True, '
                             'out_indices=...).')


class TimmClassifier:
    """What the timm classifiers share, mixed in before their backbone class.

    A subclass names its classification layers (``classifiers``, the first one being what
    ``get_classifier`` returns) and the norm before them (``final_norm``), and defines
    ``forward_features``, ``forward_head`` and ``loading_options`` (the backbone's, see
    :func:`~glmix_mm.checkpoint.load_pretrained`).
    """
    classifiers: tuple = ()
    final_norm: str = ''
    num_classes: int
    # Set on the models that ``features_only`` wraps: it prunes the final norm and the
    # classifiers, so a file needs only the backbone's weights (an OpenMMLab backbone file, the
    # authors' detection weights).
    backbone_weights_only: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return getattr(self, self.classifiers[0])

    def load_pretrained(self, checkpoint_path: str) -> None:
        """timm's ``custom_load`` hook (``pretrained=True`` with a ``file``; a ``url`` is
        downloaded by timm first): the file is read by glmix_mm's safe loader and checked as
        the MMEngine backbone checks it (the same message for a file that does not fit), with
        the classifier. As in timm, a model built with another number of classes keeps the
        initialisation of its classification layers."""
        options = self.loading_options()
        optional = [] if self.num_classes == PRETRAINED_CLASSES else list(self.classifiers)
        if self.backbone_weights_only:
            optional = [*self.classifiers, self.final_norm]
        options['optional_missing'] = [
            *options['optional_missing'], *(rf'{name}\.' for name in optional)]
        load_pretrained(self, checkpoint_path, **options)

    def without_other_classifier(self, state_dict: StateDict) -> StateDict:
        """``state_dict`` without its classification layers if this model has another number of
        classes than the released ones (timm's rule)."""
        if self.num_classes == PRETRAINED_CLASSES:
            return state_dict
        return {k: v for k, v in state_dict.items() if k.split('.')[0] not in self.classifiers}


def build(model_cls: type,
          variant: str,
          pretrained: bool = False,
          released_file: str = '',
          pretrained_cfg: Optional[object] = None,
          pretrained_cfg_overlay: Optional[dict] = None,
          **kwargs) -> nn.Module:
    """``model_cls`` built by timm's ``build_model_with_cfg`` (``features_only`` included).

    With ``pretrained=True`` the weights come from the ``file`` (or ``url``) of the pretrained
    config, given with ``pretrained_cfg_overlay``; they are read by the model's
    ``load_pretrained`` (timm's ``custom_load``), never by timm's own loader.
    """
    cfg = resolve_pretrained_cfg(
        variant, pretrained_cfg=pretrained_cfg, pretrained_cfg_overlay=pretrained_cfg_overlay)
    if pretrained:
        if not (cfg.file or cfg.url):
            raise ValueError(
                f'{variant}: pretrained=True reads the released weights from a file; pass it with '
                f"timm.create_model('{variant}', pretrained=True, pretrained_cfg_overlay="
                f"dict(file='checkpoints/{released_file}')) (nothing is downloaded; README, "
                '"Pretrained weights", says where the files are).')
        cfg = dataclasses.replace(cfg, custom_load=True)
    features_only = bool(kwargs.get('features_only'))

    def construct(**arguments) -> nn.Module:
        model = model_cls(**arguments)
        model.backbone_weights_only = features_only
        return model

    return build_model_with_cfg(
        construct, variant, pretrained, pretrained_cfg=cfg, feature_cfg=dict(FEATURE_CFG),
        **kwargs)


def register_variants(module: str, model_cls: type, variants: Dict[str, dict]) -> List[str]:
    """Register one timm entrypoint per variant (``name -> model arguments``, and the
    ``released_file`` of the message of :func:`build`), as a function of ``module`` named after
    the variant (timm's registry reads the module's ``default_cfgs``, which must hold the
    variants' pretrained configs, and adds the names to its ``__all__``).

    Returns:
        list[str]: The registered names.
    """
    for variant, arguments in variants.items():
        entrypoint = register_model(_entrypoint(module, model_cls, variant, arguments))
        setattr(sys.modules[module], variant, entrypoint)  # the names timm adds to __all__
    return list(variants)


def _entrypoint(module: str, model_cls: type, variant: str, arguments: dict) -> Callable:

    def entrypoint(pretrained: bool = False, **kwargs) -> nn.Module:
        return build(model_cls, variant, pretrained, **arguments, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = variant
    entrypoint.__module__ = module
    shown = ', '.join(f'{k}={v!r}' for k, v in arguments.items() if k != 'released_file')
    entrypoint.__doc__ = f'``{variant}``: :class:`{model_cls.__name__}` ({shown}).'
    return entrypoint
