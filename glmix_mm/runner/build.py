"""Building a config's model, or its whole Runner, with the config checks of
:mod:`glmix_mm.utils` (unknown types, neck channels) answered in one line.

Both work for MMDetection, MMSegmentation and MMPretrain configs alike: the config's
``default_scope`` decides which library builds the model, datasets and metrics.
"""
import torch
from mmengine.config import Config

from glmix_mm.utils.config_checks import unknown_types_refused
from glmix_mm.utils.model_checks import check_neck_channels


def build_model_from_cfg(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` the way MMEngine's Runner does (in the config's ``default_scope``,
    with a top-level ``data_preprocessor`` moved into the model), without ``init_weights()``:
    no checkpoint is read, for the analysis tools.

    Raises:
        ConfigError: A ``type`` the registries do not hold, or a neck / head whose input
            channels differ from the backbone's outputs.
    """
    from mmengine.registry import MODELS, init_default_scope
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    with unknown_types_refused():
        model = MODELS.build(model_cfg)
    check_neck_channels(model)
    return model


def build_runner(cfg: Config):
    """``Runner.from_cfg(cfg)`` (which builds the model), with the model checks of
    :func:`build_model_from_cfg`.

    Raises:
        ConfigError: As :func:`build_model_from_cfg`.
    """
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner
    with unknown_types_refused():
        runner = Runner.from_cfg(cfg)
    check_neck_channels(runner.model.module if is_model_wrapper(runner.model) else runner.model)
    return runner
