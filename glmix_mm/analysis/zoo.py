"""The models the analysis tools know by name: our backbones (from ``GLNet.arch_zoo`` and
``Conformer.arch_zoo``, with their published FLOPs), the baselines, the authors' GLNet and config
files; parsed from the command line (``glnet-4g:mhsa_window=14``) and built."""
import importlib
import inspect
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.config import Config

from glmix_mm.errors import UsageError
from glmix_mm.models import GLNet
from glmix_mm.runner import build_model_from_cfg
from glmix_mm.utils import ConfigError, read_config

from .inputs import parse_kwargs, split_top_level
from .upstream import build_upstream_features

# Short names of the Conformer archs: (arch_zoo key, patch size).
CONFORMER_ARCHS: Dict[str, dict] = {
    'conformer-ti': dict(arch='tiny', patch_size=16),
    'conformer-s16': dict(arch='small', patch_size=16),
    'conformer-s32': dict(arch='small', patch_size=32),
    'conformer-b': dict(arch='base', patch_size=16),
}


@dataclass(frozen=True)
class Published:
    """FLOPs of a backbone at 224x224 as published.

    Args:
        gflops (float): Published GFLOPs at 224x224.
        source (str): Who published them, and how they were counted.
        with_attention (bool): Whether the count includes attention products.
    """
    gflops: float
    source: str
    with_attention: bool


@dataclass(frozen=True)
class Backbone:
    """A backbone the tools build by name.

    Args:
        target (str): ``'module:Class'``.
        kwargs (dict): Constructor arguments.
        published (Published, optional): Its FLOPs as published (our archs).
    """
    target: str
    kwargs: Dict[str, Any]
    published: Optional[Published] = None


_GLNET_SOURCE = 'GLNet authors (fvcore, attention counted)'
_CONFORMER_SOURCE = 'MMPretrain model zoo (attention not counted)'
_PUBLISHED_GFLOPS = {'glnet-stl': 4.4, 'glnet-stl-paramslot': 4.4, 'glnet-4g': 4.5,
                     'glnet-9g': 9.7, 'glnet-16g': 16.7, 'conformer-ti': 4.9,
                     'conformer-s16': 10.3, 'conformer-s32': 7.1, 'conformer-b': 22.9}
# GLNet by name gives its raw stage outputs, as the authors' model does (``glnet_kwargs`` of
# :func:`build_backbone` can give it output norms).
RAW_OUTPUTS = dict(out_norm=None)

#: Every backbone by name: ``glnet-<arch>`` for every arch of ``GLNet.arch_zoo``, Conformer
#: (ours, with their published FLOPs), then the baselines. Drop path is off everywhere (it only
#: acts in train mode, and differently per model).
BACKBONES: Dict[str, Backbone] = dict(
    **{f'glnet-{arch}': Backbone('glmix_mm.models:GLNet', dict(arch=arch, **RAW_OUTPUTS),
                                 Published(_PUBLISHED_GFLOPS[f'glnet-{arch}'], _GLNET_SOURCE,
                                           True))
       for arch in GLNet.arch_zoo},
    **{name: Backbone('glmix_mm.models:Conformer', kwargs,
                      Published(_PUBLISHED_GFLOPS[name], _CONFORMER_SOURCE, False))
       for name, kwargs in CONFORMER_ARCHS.items()},
    **{
        'swin-t': Backbone('mmdet.models.backbones:SwinTransformer',
                           dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                                window_size=7, out_indices=(0, 1, 2, 3), drop_path_rate=0.)),
        'r50': Backbone('mmdet.models.backbones:ResNet', dict(depth=50, out_indices=(0, 1, 2, 3))),
        'convnext-t': Backbone('mmpretrain.models.backbones:ConvNeXt',
                               dict(arch='tiny', out_indices=(0, 1, 2, 3),
                                    gap_before_final_norm=False)),
    })
#: Ours: the backbones with published FLOPs.
OUR_ARCHS: List[str] = [name for name, backbone in BACKBONES.items() if backbone.published]
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
    backbone = BACKBONES[spec.name]
    cls = _import_object(backbone.target)
    kwargs = dict(backbone.kwargs)
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


def load_config(spec: ModelSpec, glnet_kwargs: Optional[dict] = None) -> Config:
    """The config of ``spec`` (its path and options) with the GLNet arguments applied.

    Raises:
        ConfigError: It cannot be read, has no ``model``, or its ``default_scope`` is none of
            ``mmdet``, ``mmseg``, ``mmpretrain``.
    """
    cfg = read_config(spec.name, spec.kwargs)
    if 'model' not in cfg:
        raise ConfigError(f'{spec.name} has no `model`; give a model config.')
    if cfg.get('default_scope') not in ('mmdet', 'mmseg', 'mmpretrain'):
        raise ConfigError(f'{spec.label}: default_scope {cfg.get("default_scope")!r} is none of '
                          'mmdet, mmseg, mmpretrain.')
    backbone = cfg.model.get('backbone', {})
    if glnet_kwargs and backbone.get('type') in ('GLNet', 'glmix_mm.GLNet'):
        backbone.update(glnet_kwargs)
    return cfg


def build_full_model(spec: ModelSpec, glnet_kwargs: Optional[dict] = None
                     ) -> Tuple[nn.Module, str]:
    """The model of a config (:func:`load_config`; no checkpoint is loaded: ``init_weights`` is
    not called) and its scope (``mmdet``, ``mmseg`` or ``mmpretrain``)."""
    cfg = load_config(spec, glnet_kwargs)
    return build_model_from_cfg(cfg), cfg.default_scope
