"""Layers under GLNet's blocks: window attention, adaptive pooling as matrix products, the
residual depth-wise convolution and the NCHW / token layout views.

These are written so that graph captures (``torch.compile`` / dynamo, ``torch.export``, the ONNX
exporters, ``torch.jit.trace``) hold graphs that serve every input size: sizes enter as tensor or
symbolic-shape arithmetic, and the one decision that differs between eager runs and captures
(:func:`glmix_mm.compat.graph_capture`) is taken in :func:`window_self_attention`.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from glmix_mm.compat import cropped_copy, graph_capture


def _window_split(length: int, window: int, captured: bool) -> Tuple[int, int]:
    """``(size, count)`` of the windows along a side of ``length`` for windows of ``window``.

    Eagerly a side shorter than the window is one window of its length. Under graph capture the
    window stays whole and a side has at least two windows: a captured graph must not depend
    on the size, and symbolic shape solvers specialise views on dimensions that may be 1.
    """
    if not captured:
        size = min(window, length)
        return size, (length + size - 1) // size
    count = (length + window - 1) // window
    if isinstance(count, torch.Tensor):  # jit.trace (TorchScript ONNX export) traces sizes
        return window, count.clamp(min=2)
    if isinstance(count, int):  # a static size (torch 2.1's dynamo refuses sym_max of ints)
        return window, max(count, 2)
    return window, torch.sym_max(count, 2)


def _attended_keys(count: int, size: int, length: int, device: torch.device) -> torch.Tensor:
    """``(count, size)``: the keys along one side that windows attend to: the positions within
    ``length``, and every position of a window wholly beyond it (windows of padding, made only
    under capture and cropped from the result, which would otherwise attend to no key)."""
    position = torch.arange(count * size, device=device).view(count, size)
    return (position < length) | (position[:, :1] >= length)


def window_self_attention(attn: nn.Module, x: torch.Tensor,
                          window: Optional[int]) -> torch.Tensor:
    """``attn`` inside non-overlapping ``window`` x ``window`` windows of a ``(B, H, W, C)`` map,
    or over the whole map if ``window`` is None.

    The map is zero-padded at the bottom and right to whole windows; padded positions are masked
    out as keys and cropped from the result, so they do not change any output. Eagerly, a side
    shorter than ``window`` gets windows of its length (the same result, without padding), so a
    window that covers the whole map is exactly global attention. A captured graph must serve
    every size: there the map is always padded and masked, to at least two whole windows per
    side (see :func:`_window_split`), which gives the same result with no Python decision on
    the size for a tracer to freeze.
    """
    if window is None:  # also takes (B, L, C) tokens
        return attn(x.flatten(1, -2)).view_as(x)
    B, H, W, C = x.shape
    captured = graph_capture()
    (win_h, rows), (win_w, cols) = _window_split(H, window, captured), _window_split(
        W, window, captured)
    pad_h, pad_w = rows * win_h - H, cols * win_w - W
    padded = captured or bool(pad_h or pad_w)
    if padded:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))

    def to_windows(t: torch.Tensor) -> torch.Tensor:  # (N, Hp, Wp, D) -> (N * nW, wh * ww, D)
        t = t.view(t.shape[0], rows, win_h, cols, win_w, t.shape[-1]).transpose(2, 3)
        return t.reshape(-1, win_h * win_w, t.shape[-1])

    key_mask = None
    if padded:  # (B * nW, 1, 1, wh * ww)
        key_mask = (_attended_keys(rows, win_h, H, x.device)[:, None, :, None]
                    & _attended_keys(cols, win_w, W, x.device)[None, :, None, :])
        key_mask = key_mask.reshape(rows * cols, 1, 1, win_h * win_w).repeat(B, 1, 1, 1)
    out = attn(to_windows(x), key_mask)
    out = out.view(B, rows, cols, win_h, win_w, C).transpose(2, 3)
    out = out.reshape(B, rows * win_h, cols * win_w, C)
    if captured and not torch.jit.is_tracing():
        # Symbolic shapes (dynamo, torch.export): a fresh map, whose strides do not depend on
        # whether there was padding.
        return cropped_copy(out, H, W)
    return out[:, :H, :W]


def check_window(window: Optional[int]) -> Optional[int]:
    """Validate an attention window size (None: global attention)."""
    if window is not None and (type(window) is not int or window < 1):
        raise ValueError(f'The attention window must be a positive int or None (global '
                         f'attention), got {window!r}.')
    return window


class ResidualDWConv(nn.Conv2d):
    """``x + DWConv(x)``: GLNet's conv position embedding and the depth-wise conv in its MLPs.

    Computed as one convolution whose kernel has the identity added at its centre tap, which
    avoids materialising ``DWConv(x)`` and a separate addition (same result up to rounding).

    Args:
        channels (int): Number of channels.
        kernel_size (int): Kernel size (odd). Defaults to 3.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2,
                         groups=channels)
        identity = torch.zeros(channels, 1, kernel_size, kernel_size)
        identity[:, :, kernel_size // 2, kernel_size // 2] = 1.
        self.register_buffer('identity', identity, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight + self.identity, self.bias)


def nchw_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_nchw(tokens: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """``(B, H*W, C)`` -> ``(B, C, H, W)`` (a view: channels-last memory)."""
    B, _, C = tokens.shape
    return tokens.transpose(1, 2).reshape(B, C, *hw)


def adaptive_pooling_matrix(length: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """The ``(bins, length)`` matrix of 1-D adaptive average pooling (bin ``i`` averages
    positions ``floor(i * length / bins)`` to ``ceil((i + 1) * length / bins) - 1``, as
    :func:`torch.nn.functional.adaptive_avg_pool2d` does along each axis).

    Built with tensor operations from ``length``, so that a captured graph (ONNX,
    ``torch.export``, ``torch.compile(dynamic=True)``) computes the bins from the input's size
    instead of freezing those of the example size. ``like`` gives the dtype and device.
    """
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * length, bins, rounding_mode='floor')
    end = torch.div((index + 1) * length + bins - 1, bins, rounding_mode='floor')
    position = torch.arange(length, device=like.device)
    inside = (position >= start[:, None]) & (position < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def adaptive_avg_pool_tokens(x: torch.Tensor, size: int) -> torch.Tensor:
    """``adaptive_avg_pool2d(x, size)`` of an NCHW map as ``(B, size * size, C)`` tokens
    (row-major over the output grid), computed as two averaging-matrix products."""
    B, C, H, W = x.shape
    pixels = x.permute(0, 2, 3, 1)  # (B, H, W, C), a view of a channels-last map
    rows = adaptive_pooling_matrix(W, size, x) @ pixels  # (B, H, size, C)
    grid = adaptive_pooling_matrix(H, size, x) @ rows.reshape(B, H, size * C)
    return grid.reshape(B, size * size, C)
