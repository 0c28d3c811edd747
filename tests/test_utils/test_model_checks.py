"""glmix_mm/utils/model_checks.py, check_neck_channels: a neck that does not fit the backbone's
output widths is one line with the value to set (through tools/train.py:
tests/test_tools/test_bad_input.py)."""
import re

import pytest
import torch
from helpers import DEMO
from mmengine.config import Config


def test_neck_channels_that_do_not_fit_the_backbone():
    """model.backbone.arch=stl without the neck's in_channels: one line with the value to set
    (without the check: a RuntimeError inside FPN at the first forward pass)."""
    from mmengine.registry import MODELS, init_default_scope

    from glmix_mm.runner import build_model_from_cfg
    from glmix_mm.utils import ConfigError, check_neck_channels
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict({'model.backbone.arch': 'stl'})
    message = re.escape(
        "model.neck.in_channels=[64, 128, 256, 512], but the GLNet(arch='stl') backbone "
        'returns [96, 192, 384, 768] (out_indices [0, 1, 2, 3]): set '
        'model.neck.in_channels=[96, 192, 384, 768].')
    with pytest.raises(ConfigError, match=message):
        build_model_from_cfg(cfg)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    with pytest.raises(ConfigError, match=message):
        check_neck_channels(model)
    with pytest.raises(RuntimeError, match='channels'):  # what the user sees without it
        model.extract_feat(torch.randn(1, 3, 64, 64))
    cfg.merge_from_dict({'model.neck.in_channels': [96, 192, 384, 768]})
    check_neck_channels(build_model_from_cfg(cfg))
