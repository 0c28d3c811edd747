"""Registries of glmix_mm.

Every backbone is registered twice with one decorator: in the ``glmix_mm`` scope (reachable
everywhere as ``type='glmix_mm.GLNet'``) and in MMEngine's root ``MODELS`` registry, which is the
parent of the MMDetection, MMSegmentation and MMPretrain registries, so that a plain
``type='GLNet'`` resolves from any of those default scopes once ``glmix_mm`` is imported (e.g. by
``custom_imports=dict(imports=['glmix_mm'])``). A name that a library already registers in its own
scope (mmpretrain's classification ``Conformer``) keeps resolving to that library's class there.
"""
from typing import Callable, Optional, TypeVar, Union

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='glmix_mm', locations=['glmix_mm.models'])

T = TypeVar('T', bound=type)


def register_model(cls: Optional[T] = None,
                   *,
                   name: Optional[str] = None) -> Union[T, Callable[[T], T]]:
    """Register a class in the ``glmix_mm`` scope and in MMEngine's root registry.

    Use as ``@register_model`` or ``@register_model(name='ShortName')``.

    Args:
        cls (type, optional): The class to register.
        name (str, optional): Registered name; defaults to the class name.
    """

    def _register(module: T) -> T:
        MODELS.register_module(name=name, module=module)
        MMENGINE_MODELS.register_module(name=name, module=module)
        return module

    return _register if cls is None else _register(cls)
