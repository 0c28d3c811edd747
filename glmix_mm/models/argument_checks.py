"""Checks of backbone arguments shared by GLNet and Conformer: each refuses, at build time and
with one line, a value that would otherwise fail deep inside the model or silently change it."""
from typing import Sequence, Tuple, Union

import torch.nn as nn
from mmengine.registry import MODELS


def is_int(value) -> bool:
    """An int, not a bool (``True`` is an int to Python, never a stage index)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_out_indices(out_indices: Union[int, Sequence[int]], num_outputs: int) -> Tuple[int, ...]:
    """``out_indices`` as sorted distinct indices in ``0..num_outputs - 1``.

    An int is one index; negative indices count from the end, as in MMPretrain.
    """
    given = out_indices
    if is_int(out_indices):
        out_indices = (out_indices, )
    if isinstance(out_indices, (str, bytes)) or not isinstance(out_indices, Sequence) or any(
            not is_int(i) for i in out_indices):
        raise TypeError(f'out_indices must be a sequence of ints (stage indices in '
                        f'0..{num_outputs - 1}), got {given!r}.')
    indices = [i + num_outputs if i < 0 else i for i in out_indices]
    if not indices or any(i not in range(num_outputs) for i in indices):
        raise ValueError(f'out_indices must be stage indices in 0..{num_outputs - 1} (or '
                         f'-{num_outputs}..-1), got {given!r}.')
    if len(set(indices)) != len(indices):
        raise ValueError(f'out_indices names a stage twice: {given!r}; each stage is returned '
                         'once.')
    return tuple(sorted(indices))


def check_drop_path_rate(rate: float) -> None:
    """A stochastic depth rate is a probability below 1 (1 drops every path: NaN outputs)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f'drop_path_rate must be a number in [0, 1), got {rate!r}.')


def check_norm_cfg(cfg: dict, name: str) -> None:
    """Refuse a norm config that would fail or mislead only once the model runs: an unknown
    type (MMCV's own message names ``None``), or a plain LayerNorm, which on NCHW maps normalises
    the last dimension (the width) instead of the channels."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'{name} must be a dict with a type, e.g. dict(type="BN"), got '
                        f'{cfg!r}.')
    layer = cfg['type']
    if isinstance(layer, str):
        with MODELS.switch_scope_and_registry(None) as registry:
            layer = registry.get(layer)
        if layer is None:
            raise ValueError(f'{name}: unknown norm type {cfg["type"]!r}; use a registered '
                             "norm layer such as 'BN', 'SyncBN', 'GN' or 'LN2d'.")
    if layer is nn.LayerNorm:  # subclasses (LN2d of glmix_mm, mmpretrain) normalise channels
        raise ValueError(f'{name}: {cfg["type"]!r} normalises the last dimension of NCHW maps '
                         "(the width), not the channels; use dict(type='LN2d').")
