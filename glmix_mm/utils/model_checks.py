"""Checks of a built model that catch config mistakes before the first forward pass."""
from typing import Optional, Sequence

import torch.nn as nn

from .config_checks import ConfigError


def _channel_list(value) -> Optional[list]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def check_neck_channels(model: nn.Module) -> None:
    """Refuse a model whose neck (or, without one, decode head) expects other channel counts
    than its backbone returns, e.g. ``neck.in_channels`` of GLNet-4G left in a config switched
    to ``arch='stl'``: without the check this fails in the first forward pass, deep inside FPN.

    Only backbones that state their ``out_channels`` (GLNet, Conformer) are checked; an int
    ``in_channels`` (a classification head) must equal the last of them.

    Args:
        model (nn.Module): A built detector, segmentor or classifier.

    Raises:
        ConfigError: The channels do not match; the message gives the value to set (a
            ``ValueError``).
    """
    backbone = getattr(model, 'backbone', None)
    produced = _channel_list(getattr(backbone, 'out_channels', None))
    if produced is None:
        return
    for name in ('neck', 'decode_head', 'head'):
        consumer = getattr(model, name, None)
        expected = getattr(consumer, 'in_channels', None)
        if expected is None:
            continue
        if isinstance(expected, int) and not isinstance(expected, bool):
            if expected != produced[-1]:
                raise ConfigError(
                    f'model.{name}.in_channels={expected}, but the {type(backbone).__name__} '
                    f'backbone returns {produced[-1]} channels in its last output: set '
                    f'model.{name}.in_channels={produced[-1]}.')
            return
        expected = _channel_list(expected)
        if expected is not None and expected != produced:
            arch = getattr(backbone, 'arch_name', None)
            what = type(backbone).__name__ + (f'(arch={arch!r})' if arch else '')
            raise ConfigError(
                f'model.{name}.in_channels={expected}, but the {what} backbone returns '
                f'{produced} (out_indices {list(getattr(backbone, "out_indices", []))}): set '
                f'model.{name}.in_channels={produced}.')
        return
