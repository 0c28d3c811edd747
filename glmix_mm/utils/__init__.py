from .cli import ConfigOptionsAction, at_least
from .config_checks import ConfigError, read_config, unknown_types_refused
from .model_checks import check_neck_channels

__all__ = ['ConfigError', 'ConfigOptionsAction', 'at_least', 'build_model_from_cfg',
           'check_neck_channels', 'read_config', 'unknown_types_refused']


def __getattr__(name: str):
    # The analysis and deployment tools import build_model_from_cfg from here; it lives in
    # glmix_mm.runner, which imports this package (imported lazily to avoid the cycle).
    if name == 'build_model_from_cfg':
        from glmix_mm.runner import build_model_from_cfg
        return build_model_from_cfg
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
