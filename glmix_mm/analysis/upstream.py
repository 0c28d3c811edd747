"""The authors' GLNet, imported from a clone of github.com/rayleizhu/GLMix, for the tools that
compare ours with it (``tools/analysis/compare_with_upstream.py``, ``benchmark.py``).

Upstream's ``models/glnet.py`` (and ``models/glnet_tklb.py`` for the token-labelling models)
import ``timm`` and ``fairscale``; nothing of upstream is part of this repository.
"""
import contextlib
import importlib
import os.path as osp
import sys
from types import ModuleType
from typing import Callable, Tuple

import torch
import torch.nn as nn

from glmix_mm.errors import UsageError


def import_upstream_glnet(repo: str, tklb: bool = False) -> ModuleType:
    """``models.glnet`` (``models.glnet_tklb`` if ``tklb``) of the GLMix clone ``repo``.

    Raises ``UsageError`` if ``repo`` is not such a clone, or, naming the missing dependencies,
    if upstream's imports fail.
    """
    name = 'glnet_tklb' if tklb else 'glnet'
    if not osp.isfile(osp.join(repo, 'models', f'{name}.py')):
        raise UsageError(f'--glmix-repo {repo!r} has no models/{name}.py; give a clone of '
                         'github.com/rayleizhu/GLMix.')
    if repo not in sys.path:
        sys.path.insert(0, repo)
    try:
        return importlib.import_module(f'models.{name}')
    except ImportError as error:
        raise UsageError(f'Importing the upstream GLNet failed ({error}); it needs timm and '
                         'fairscale (pip install timm fairscale).') from error


def upstream_glnet_factory(repo: str, arch: str) -> Callable:
    """Upstream's model function of one of our GLNet archs (``'4g'``, ``'9g_tklb'``, ...)."""
    module = import_upstream_glnet(repo, tklb=arch.endswith('tklb'))
    return getattr(module, 'glnet_' + arch.replace('-', '_'))


class UpstreamGLNetFeatures(nn.Module):
    """The four stage outputs of the authors' GLNet (its head and final norm dropped).

    Keeps the upstream modules under their own names (``downsample_layers``, ``stages``), which
    are ours too, so that its state dict loads into our :class:`GLNet`.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.downsample_layers = net.downsample_layers
        self.stages = net.stages

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
            outs.append(x)
        return tuple(outs)


def build_upstream_features(repo: str, arch: str, **kwargs) -> nn.Module:
    """The authors' GLNet of ``arch`` (``'4g'``, ...), as its four stage outputs."""
    factory = upstream_glnet_factory(repo, arch)
    with contextlib.redirect_stdout(sys.stderr):  # it prints its unused arguments
        net = factory(**kwargs)
    return UpstreamGLNetFeatures(net)
