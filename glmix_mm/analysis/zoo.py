"""The models the analysis tools know by name: our backbones (from ``GLNet.arch_zoo`` and
``Conformer.arch_zoo``), the baselines, the authors' GLNet and config files; parsed from the
command line (``glnet-4g:mhsa_window=14``) and built."""
import importlib
import inspect
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch.nn as nn

from glmix_mm.errors import UsageError
from glmix_mm.models import GLNet
from glmix_mm.runner import build_model_from_cfg

from .inputs import parse_kwargs, split_top_level
from .upstream import build_upstream_features

# Short names of the Conformer archs: (arch_zoo key, patch size).
CONFORMER_ARCHS: Dict[str, dict] = {
    'conformer-ti': dict(arch='tiny', patch_size=16),
    'conformer-s16': dict(arch='small', patch_size=16),
    'conformer-s32': dict(arch='small', patch_size=32),
    'conformer-b': dict(arch='base', patch_size=16),
}
#: Our backbones by name: ``glnet-<arch>`` for every arch of ``GLNet.arch_zoo``, then Conformer.
ARCH_KWARGS: Dict[str, dict] = dict(
    **{f'glnet-{arch}': dict(arch=arch) for arch in GLNet.arch_zoo}, **CONFORMER_ARCHS)

# Backbones by name: 'module:Class' and the constructor arguments. GLNet gives its raw stage
# outputs (out_norm=None); drop path is off everywhere (it only acts in train mode, and
# differently per model).
BACKBONES: Dict[str, Tuple[str, dict]] = dict(
    **{name: ('glmix_mm.models:GLNet', dict(kwargs, out_norm=None))
       for name, kwargs in ARCH_KWARGS.items() if name.startswith('glnet-')},
    **{name: ('glmix_mm.models:Conformer', kwargs) for name, kwargs in CONFORMER_ARCHS.items()},
    **{
        'swin-t': ('mmdet.models.backbones:SwinTransformer',
                   dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                        window_size=7, out_indices=(0, 1, 2, 3), drop_path_rate=0.)),
        'r50': ('mmdet.models.backbones:ResNet', dict(depth=50, out_indices=(0, 1, 2, 3))),
        'convnext-t': ('mmpretrain.models.backbones:ConvNeXt',
                       dict(arch='tiny', out_indices=(0, 1, 2, 3), gap_before_final_norm=False)),
    })
# The authors' GLNet, one per arch of ours: ``upstream-glnet-<arch>``.
UPSTREAM_PREFIX = 'upstream-'
UPSTREAM_GLNETS: List[str] = [UPSTREAM_PREFIX + f'glnet-{arch}' for arch in GLNet.arch_zoo]
COMPILED_SUFFIX = ' (compiled)'


@dataclass
class ModelSpec:
    """A model named on the command line.

    Args:
        text (str): The name as given, with its arguments.
        name (str): A key of :data:`BACKBONES` or :data:`UPSTREAM_GLNETS`, or a config path.
        kwargs (dict): Constructor arguments, or config options for a config.
        compiled (bool): The ``torch.compile`` twin of the model named ``text`` (``--compile``).
    """
    text: str
    name: str
    kwargs: dict = field(default_factory=dict)
    compiled: bool = False

    @property
    def label(self) -> str:
        """The name in the tables: ``text``, without the directories of a config, and
        :data:`COMPILED_SUFFIX` for a compiled twin."""
        label = osp.basename(self.text) if self.is_config else self.text
        return label + COMPILED_SUFFIX if self.compiled else label

    @property
    def is_config(self) -> bool:
        return self.name.endswith('.py')

    @property
    def is_upstream(self) -> bool:
        return self.name in UPSTREAM_GLNETS

    @property
    def glnet_arch(self) -> Optional[str]:
        """The GLNet arch of ours (``glnet-*``) or upstream's, else None."""
        base = self.name[len(UPSTREAM_PREFIX):] if self.is_upstream else self.name
        return base[len('glnet-'):] if base.startswith('glnet-') else None


def model_choices() -> List[str]:
    """Every model name that the tools know (configs aside)."""
    return list(BACKBONES) + UPSTREAM_GLNETS


def parse_model(text: str, glmix_repo: Optional[str] = None) -> ModelSpec:
    """``'glnet-4g:mhsa_window=14'`` -> a :class:`ModelSpec`.

    Raises:
        UsageError: An unknown name (with the list of valid ones), a config that does not
            exist, an upstream model without ``glmix_repo``.
    """
    name, _, arg_text = text.partition(':')
    kwargs = parse_kwargs(split_top_level(arg_text))
    spec = ModelSpec(text, name, kwargs)
    if spec.is_config:
        if not osp.isfile(name):
            raise UsageError(f'Config file {name!r} not found.')
    elif name not in BACKBONES and name not in UPSTREAM_GLNETS:
        raise UsageError(f'Unknown model {name!r}. Choose from {", ".join(model_choices())}, '
                         'or give a config file (*.py).')
    elif spec.is_upstream and not glmix_repo:
        raise UsageError(f'{name!r} is the authors\' GLNet: give the path of a clone of '
                         'github.com/rayleizhu/GLMix with --glmix-repo.')
    return spec


def _import_object(path: str) -> Any:
    module, _, name = path.partition(':')
    return getattr(importlib.import_module(module), name)


def _check_kwargs(cls: type, kwargs: dict, label: str) -> None:
    """Refuse arguments that ``cls`` does not take, naming the ones it does."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        valid = [p for p in params if p != 'self']
        raise UsageError(f'{label}: {cls.__name__} has no argument {", ".join(unknown)} (in this '
                         f'version); it takes {", ".join(valid)}.')


def backbone_class_and_kwargs(spec: ModelSpec, glnet_kwargs: Optional[dict] = None
                              ) -> Tuple[type, dict]:
    """The class of a :data:`BACKBONES` entry and its arguments: the defaults, then
    ``glnet_kwargs`` (GLNet only), then the spec's; arguments the class lacks are refused."""
    path, defaults = BACKBONES[spec.name]
    cls = _import_object(path)
    kwargs = dict(defaults)
    if spec.glnet_arch is not None:
        kwargs.update(glnet_kwargs or {})
    kwargs.update(spec.kwargs)
    _check_kwargs(cls, kwargs, spec.label)
    return cls, kwargs


def build_backbone(spec: ModelSpec, glnet_kwargs: Optional[dict] = None) -> nn.Module:
    """One of :data:`BACKBONES`, with the spec's arguments (and ``glnet_kwargs`` for GLNet)."""
    cls, kwargs = backbone_class_and_kwargs(spec, glnet_kwargs)
    return cls(**kwargs)


def build_upstream(spec: ModelSpec, repo: str) -> nn.Module:
    """The authors' GLNet of ``spec``'s arch, as its four stage outputs."""
    return build_upstream_features(repo, spec.glnet_arch, **spec.kwargs)


def load_config(spec: ModelSpec, glnet_kwargs: Optional[dict] = None):
    """The config of ``spec`` with its options and the GLNet arguments applied."""
    from mmengine.config import Config
    cfg = Config.fromfile(spec.name)
    if spec.kwargs:
        cfg.merge_from_dict(spec.kwargs)
    backbone = cfg.model.get('backbone', {})
    if glnet_kwargs and backbone.get('type') in ('GLNet', 'glmix_mm.GLNet'):
        backbone.update(glnet_kwargs)
    return cfg


def build_full_model(spec: ModelSpec, glnet_kwargs: Optional[dict] = None
                     ) -> Tuple[nn.Module, str]:
    """The model of a config (no checkpoint is loaded: ``init_weights`` is not called) and its
    scope (``mmdet``, ``mmseg`` or ``mmpretrain``)."""
    cfg = load_config(spec, glnet_kwargs)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg', 'mmpretrain'):
        raise ValueError(f'{spec.label}: default_scope {scope!r} is none of mmdet, mmseg, '
                         'mmpretrain.')
    return build_model_from_cfg(cfg), scope
