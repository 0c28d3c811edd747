"""Building blocks of GLNet: the GLMix block and the MHSA blocks it is mixed with.

A GLMix block ("Revisiting the Integration of Convolution and Attention for Vision Backbone",
NeurIPS 2024) mixes tokens on two granularities in parallel: a local branch of convolutions on the
pixel grid, and a global branch that softly clusters the pixels into a few semantic slots, runs
multi-head self-attention among the slots and dispatches the slots back to the pixels.

Parameter names follow the released GLNet checkpoints, so that those load without renaming.
All tensors are NCHW unless a name says ``tokens`` (``(B, L, C)``).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule

from glmix_mm.registry import register_model
from .layers import (ResidualDWConv, adaptive_avg_pool_tokens, check_window, nchw_to_tokens,
                     tokens_to_nchw, window_self_attention)


@register_model(name='LN2d')
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (registered as ``LN2d``).

    Args:
        num_channels (int): Number of channels.
        eps (float): Added to the variance. Defaults to 1e-6, as in GLNet.
        elementwise_affine (bool): Learn a scale and a shift. Defaults to True.
    """
    _abbr_ = 'ln'

    def __init__(self, num_channels: int, eps: float = 1e-6,
                 elementwise_affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=elementwise_affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """Learnable per-channel scale ``gamma * x`` (CaiT).

    Args:
        num_channels (int): Number of channels.
        init_value (float): Initial value of every scale.
        channels_first (bool): True for NCHW inputs (``gamma`` of shape ``(1, C, 1, 1)``), False for
            channels-last inputs (``gamma`` of shape ``(C,)``), as in the released checkpoints.
    """

    def __init__(self, num_channels: int, init_value: float, channels_first: bool) -> None:
        super().__init__()
        shape = (1, num_channels, 1, 1) if channels_first else (num_channels, )
        self.gamma = nn.Parameter(torch.full(shape, float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * x


def make_layer_scale(num_channels: int, init_value: Optional[float],
                     channels_first: bool) -> nn.Module:
    """A :class:`LayerScale`, or an identity when ``init_value`` is None."""
    if init_value is None:
        return nn.Identity()
    return LayerScale(num_channels, init_value, channels_first)


class MultiheadSelfAttention(nn.Module):
    """Multi-head self-attention on ``(B, L, C)`` tokens with fused attention.

    Same math and parameter names as ``nn.MultiheadAttention(batch_first=True)`` used for
    self-attention (``in_proj_weight``, ``in_proj_bias``, ``out_proj``), computed with
    :func:`torch.nn.functional.scaled_dot_product_attention`.

    Args:
        embed_dims (int): Token dimension.
        num_heads (int): Number of heads; must divide ``embed_dims``.
    """

    def __init__(self, embed_dims: int, num_heads: int) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads}).')
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dims, embed_dims))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dims))
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, tokens: torch.Tensor,
                key_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend among ``tokens`` ``(B, L, C)``; keys where the boolean ``key_mask``
        (broadcastable to ``(B, 1, 1, L)``) is False are ignored."""
        B, L, C = tokens.shape
        qkv = F.linear(tokens, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(B, L, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)  # (B, heads, L, C/heads)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, C))


def conv_mlp(embed_dims: int, mlp_ratio: float, dwconv: bool) -> nn.Sequential:
    """The per-pixel MLP of NCHW blocks: 1x1 conv, optional residual 3x3 DW conv, GELU, 1x1.

    The identity placeholder keeps the parameter indices of the released checkpoints.
    """
    hidden = int(mlp_ratio * embed_dims)
    return nn.Sequential(
        nn.Conv2d(embed_dims, hidden, 1),
        ResidualDWConv(hidden) if dwconv else nn.Identity(),
        nn.GELU(),
        nn.Conv2d(hidden, embed_dims, 1))


def local_convs(embed_dims: int, kernel_size: int) -> nn.Module:
    """The local branch of a GLMix block: 1x1 conv, ``kernel_size`` depth-wise conv, 1x1 conv
    (an identity if ``kernel_size`` is 0)."""
    if kernel_size == 0:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(embed_dims, embed_dims, 1),
        nn.Conv2d(embed_dims, embed_dims, kernel_size, padding=kernel_size // 2,
                  groups=embed_dims),
        nn.Conv2d(embed_dims, embed_dims, 1))


def pos_conv(embed_dims: int, kernel_size: int) -> nn.Module:
    """Depth-wise conv position embedding ``x + DWConv(x)``, or an identity if ``kernel_size``
    is 0."""
    return ResidualDWConv(embed_dims, kernel_size) if kernel_size > 0 else nn.Identity()


class ResidualBlock(BaseModule):
    """Base of the blocks: a token-mixing and an MLP residual branch, each scaled by a layer
    scale (``ls1``, ``ls2``) and dropped by stochastic depth (``drop_path``), which subclasses
    build."""

    def build_scaling(self, embed_dims: int, layer_scale: Optional[float], drop_path: float,
                      channels_first: Tuple[bool, bool]) -> None:
        """Build ``ls1`` and ``ls2``, the layer scales of the two branches (``embed_dims``
        channels initialised to ``layer_scale``, identities if None; ``channels_first``: each
        one's channels are dimension 1 of its branch's output, else the last), and
        ``drop_path`` (stochastic depth of rate ``drop_path``)."""
        self.ls1 = make_layer_scale(embed_dims, layer_scale, channels_first=channels_first[0])
        self.ls2 = make_layer_scale(embed_dims, layer_scale, channels_first=channels_first[1])
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def scale_mixing(self, branch: torch.Tensor) -> torch.Tensor:
        """``drop_path(ls1(branch))``: the token-mixing branch as added to the residual."""
        return self.drop_path(self.ls1(branch))

    def scale_mlp(self, branch: torch.Tensor) -> torch.Tensor:
        """``drop_path(ls2(branch))``: the MLP branch as added to the residual."""
        return self.drop_path(self.ls2(branch))


class GLMixBlock(ResidualBlock):
    """GLMix block: local convs and global slot attention in parallel, then an MLP.

    The global branch, with ``n = normalize`` (L2 over channels) and learnable scale ``s``:
    ``A = s * n(init_slots) @ n(x)^T`` (slots x pixels); slots ``= softmax_pixels(A) @ x``;
    slots ``= MHSA(slots)``; pixels ``= softmax_slots(A^T) @ slots``. ``A`` is computed once and
    serves both soft assignments, as in the authors' code (two fused-attention calls would
    compute it twice: as fast in inference, slower to train). Its entries are cosine
    similarities times ``s``, so both softmaxes stay bounded under fp16 / bf16.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads of the slot attention.
        num_slots (int): Number of semantic slots. Defaults to 64.
        slot_init (str): ``'ada_avgpool'`` (slots initialised by adaptive average pooling of the
            block input to a ``sqrt(num_slots)`` square grid) or ``'param'`` (learned slots).
        local_kernel (int): Kernel of the local depth-wise conv (0 disables the local branch).
        mlp_ratio (float): Hidden / input channels of the MLP.
        mlp_dwconv (bool): Residual 3x3 depth-wise conv inside the MLP.
        cpe_kernel (int): Kernel of the conv position embedding (0 disables it).
        layer_scale (float, optional): Initial layer scale; None disables it.
        drop_path (float): Stochastic depth rate.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 num_slots: int = 64,
                 slot_init: str = 'ada_avgpool',
                 local_kernel: int = 5,
                 mlp_ratio: float = 4.,
                 mlp_dwconv: bool = False,
                 cpe_kernel: int = 0,
                 layer_scale: Optional[float] = None,
                 drop_path: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.slot_scale = nn.Parameter(torch.tensor(embed_dims**-0.5))
        self.pos_conv = pos_conv(embed_dims, cpe_kernel)
        if slot_init == 'param':
            self.init_slots = nn.Parameter(torch.empty(1, num_slots, embed_dims))
            nn.init.normal_(self.init_slots, std=.02)
        elif slot_init == 'ada_avgpool':
            self.pool_size = math.isqrt(num_slots)
            if self.pool_size**2 != num_slots:
                raise ValueError(f"slot_init='ada_avgpool' needs a square num_slots, got "
                                 f'{num_slots}.')
        else:
            raise ValueError(f"slot_init must be 'ada_avgpool' or 'param', got {slot_init!r}.")
        self.slot_init = slot_init
        self.norm1 = LayerNorm2d(embed_dims)
        self.relation_mha = MultiheadSelfAttention(embed_dims, num_heads)
        self.feature_conv = local_convs(embed_dims, local_kernel)
        self.norm2 = LayerNorm2d(embed_dims)
        self.mlp = conv_mlp(embed_dims, mlp_ratio, mlp_dwconv)
        self.build_scaling(embed_dims, layer_scale, drop_path, channels_first=(True, True))

    def initial_slots(self, x: torch.Tensor) -> torch.Tensor:
        """Slot initialisation ``(B or 1, num_slots, C)`` from the block input ``x``."""
        if self.slot_init == 'param':
            return self.init_slots
        return adaptive_avg_pool_tokens(x, self.pool_size)

    def assignment_logits(self, pixels: torch.Tensor, init_slots: torch.Tensor) -> torch.Tensor:
        """``A^T``, shape ``(B, H*W, num_slots)``, for normalised pixels ``(B, H*W, C)``."""
        slot_keys = self.slot_scale * F.normalize(init_slots, dim=-1)
        logits = pixels @ slot_keys.transpose(1, 2).to(pixels.dtype).contiguous()
        # Dividing the logits' rows by the pixel norms equals normalising the pixels first
        # (as F.normalize does, norms clamped at 1e-12), at the cost of a (B, H*W, num_slots)
        # division instead of a (B, H*W, C) one.
        return logits.div_(torch.linalg.vector_norm(pixels, dim=-1, keepdim=True).clamp_min(1e-12))

    def slot_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Clustering logits ``A`` of shape ``(B, num_slots, H*W)`` for the block input ``x``
        (for visualisation)."""
        _, y, init_slots = self.mixing_inputs(x)
        return self.assignment_logits(nchw_to_tokens(y), init_slots).transpose(1, 2)

    def mixing_inputs(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x + CPE(x), norm1(x + CPE(x)), initial slots of x)``: the residual and what the
        local and global branches read."""
        init_slots = self.initial_slots(x)
        x = self.pos_conv(x)
        return x, self.norm1(x), init_slots

    def global_mixing(self, x: torch.Tensor, init_slots: torch.Tensor) -> torch.Tensor:
        """Cluster the (normalised) pixels ``x`` into slots, mix the slots, dispatch them back."""
        pixels = nchw_to_tokens(x)  # (B, L, C), a view of a channels-last map
        logits = self.assignment_logits(pixels, init_slots)  # (B, L, S)
        slots = logits.softmax(dim=1).transpose(1, 2) @ pixels  # each slot: pixels' mean
        slots = self.relation_mha(slots)
        return tokens_to_nchw(logits.softmax(dim=-1) @ slots, x.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, y, init_slots = self.mixing_inputs(x)
        x = x + self.scale_mixing(self.global_mixing(y, init_slots) + self.feature_conv(y))
        return x + self.scale_mlp(self.mlp(self.norm2(x)))


class MHSABlock(ResidualBlock):
    """Global multi-head self-attention block on NCHW maps, with a conv MLP.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden / input channels of the MLP.
        mlp_dwconv (bool): Residual 3x3 depth-wise conv inside the MLP.
        cpe_kernel (int): Kernel of the conv position embedding (0 disables it).
        layer_scale (float, optional): Initial layer scale; None disables it.
        drop_path (float): Stochastic depth rate.
        window (int, optional): Attend inside non-overlapping windows of ``window`` x ``window``
            pixels (see :func:`window_self_attention`) instead of globally. Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 mlp_dwconv: bool = False,
                 cpe_kernel: int = 0,
                 layer_scale: Optional[float] = None,
                 drop_path: float = 0.,
                 window: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.window = check_window(window)
        self.pos_conv = pos_conv(embed_dims, cpe_kernel)
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mha_op = MultiheadSelfAttention(embed_dims, num_heads)
        self.norm2 = LayerNorm2d(embed_dims)
        self.mlp = conv_mlp(embed_dims, mlp_ratio, mlp_dwconv)
        self.build_scaling(embed_dims, layer_scale, drop_path, channels_first=(False, True))

    def attention_residual(self, x: torch.Tensor) -> torch.Tensor:
        """The attention half of the block: ``x' + drop_path(ls1(MHSA(norm1(x'))))`` with
        ``x' = pos_conv(x)`` (``x + DWConv(x)``, or ``x``)."""
        x = self.pos_conv(x).permute(0, 2, 3, 1)  # (B, H, W, C), a view
        y = window_self_attention(self.mha_op, self.norm1(x), self.window)
        return (x + self.scale_mixing(y)).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_residual(x)
        return x + self.scale_mlp(self.mlp(self.norm2(x)))


class MHSATokenBlock(ResidualBlock):
    """Plain pre-norm transformer block on channels-last tokens (the last stage of GLNet-STL).

    Takes ``(B, L, C)`` tokens or ``(B, H, W, C)`` maps (required for windowed attention).

    Args:
        embed_dims (int): Channels.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden / input channels of the MLP.
        layer_scale (float, optional): Initial layer scale; None disables it.
        drop_path (float): Stochastic depth rate.
        window (int, optional): Attend inside non-overlapping windows of ``window`` x ``window``
            positions of a ``(B, H, W, C)`` input instead of globally. Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 layer_scale: Optional[float] = None,
                 drop_path: float = 0.,
                 window: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.window = check_window(window)
        hidden = int(mlp_ratio * embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mha_op = MultiheadSelfAttention(embed_dims, num_heads)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.GELU(), nn.Linear(hidden, embed_dims))
        self.build_scaling(embed_dims, layer_scale, drop_path, channels_first=(False, False))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        y = window_self_attention(self.mha_op, self.norm1(tokens), self.window)
        tokens = tokens + self.scale_mixing(y)
        return tokens + self.scale_mlp(self.mlp(self.norm2(tokens)))
