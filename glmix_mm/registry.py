"""Registries of glmix_mm.

Every model (and hook) is registered twice with one decorator: in the ``glmix_mm`` scope
(reachable everywhere as e.g. ``type='glmix_mm.GLNet'``) and in MMEngine's root registry, which is
the parent of the MMDetection, MMSegmentation and MMPretrain registries, so that a plain
``type='GLNet'`` resolves from any of those default scopes once ``glmix_mm`` is imported (e.g. by
``custom_imports=dict(imports=['glmix_mm'])``). A name that a library already registers in its own
scope (mmpretrain's classification ``Conformer``) keeps resolving to that library's class there.
"""
from functools import partial
from typing import Callable, Optional, TypeVar, Union

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='glmix_mm', locations=['glmix_mm.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='glmix_mm', locations=['glmix_mm.engine'])

T = TypeVar('T', bound=type)


def _register_everywhere(own: Registry,
                         root: Registry,
                         cls: Optional[T] = None,
                         *,
                         name: Optional[str] = None) -> Union[T, Callable[[T], T]]:

    def _register(module: T) -> T:
        own.register_module(name=name, module=module)
        root.register_module(name=name, module=module)
        return module

    return _register if cls is None else _register(cls)


register_model = partial(_register_everywhere, MODELS, MMENGINE_MODELS)
register_model.__doc__ = """Register a model class in the ``glmix_mm`` scope and in MMEngine's
root registry. Use as ``@register_model`` or ``@register_model(name='ShortName')``."""

register_hook = partial(_register_everywhere, HOOKS, MMENGINE_HOOKS)
register_hook.__doc__ = """Register a hook class like :func:`register_model` does models."""
