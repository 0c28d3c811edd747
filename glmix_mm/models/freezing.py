"""Freezing helpers shared by the backbones (``frozen_stages`` and ``norm_eval``)."""
from typing import Iterable

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def freeze(modules: Iterable[nn.Module]) -> None:
    """Put ``modules`` in eval mode and stop gradients to their parameters."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


def batch_norms_to_eval(model: nn.Module) -> None:
    """Put every BatchNorm layer of ``model`` in eval mode: running statistics are used and no
    longer updated (the ``norm_eval`` option of OpenMMLab backbones)."""
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.eval()
