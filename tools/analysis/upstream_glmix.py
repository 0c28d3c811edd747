"""The authors' GLNet, imported from a clone of github.com/rayleizhu/GLMix, for the tools that
compare ours with it (``compare_with_upstream.py``, ``benchmark.py``).

Upstream's ``models/glnet.py`` (and ``models/glnet_tklb.py`` for the token-labelling models)
import ``timm`` and ``fairscale``; nothing of upstream is part of this repository.
"""
import importlib
import os.path as osp
import sys
from types import ModuleType
from typing import Callable


def import_upstream_glnet(repo: str, tklb: bool = False) -> ModuleType:
    """``models.glnet`` (``models.glnet_tklb`` if ``tklb``) of the GLMix clone ``repo``.

    Raises ``ValueError`` if ``repo`` is not such a clone and ``ImportError`` naming the missing
    dependencies if upstream's imports fail.
    """
    name = 'glnet_tklb' if tklb else 'glnet'
    if not osp.isfile(osp.join(repo, 'models', f'{name}.py')):
        raise ValueError(f'--glmix-repo {repo!r} has no models/{name}.py; give a clone of '
                         'github.com/rayleizhu/GLMix.')
    if repo not in sys.path:
        sys.path.insert(0, repo)
    try:
        return importlib.import_module(f'models.{name}')
    except ImportError as error:
        raise ImportError(f'Importing the upstream GLNet failed ({error}); it needs timm and '
                          'fairscale (pip install timm fairscale).') from error


def upstream_glnet_factory(repo: str, arch: str) -> Callable:
    """Upstream's model function of one of our GLNet archs (``'4g'``, ``'9g_tklb'``, ...)."""
    module = import_upstream_glnet(repo, tklb=arch.endswith('tklb'))
    return getattr(module, 'glnet_' + arch.replace('-', '_'))
