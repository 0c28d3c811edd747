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

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        B, L, C = tokens.shape
        qkv = F.linear(tokens, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(B, L, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, L, C / heads)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, C))


class ResidualDWConv(nn.Conv2d):
    """``x + DWConv(x)``: the depth-wise convolution inside GLNet's MLPs.

    Args:
        channels (int): Number of channels.
        kernel_size (int): Kernel size. Defaults to 3.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2,
                         groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


def conv_mlp(embed_dims: int, mlp_ratio: float, dwconv: bool) -> nn.Sequential:
    """The per-pixel MLP of NCHW blocks: 1x1 conv, optional residual 3x3 DW conv, GELU, 1x1.

    The identity placeholder keeps the parameter indices of the released checkpoints.
    """
    hidden = int(mlp_ratio * embed_dims)
    return nn.Sequential(
        nn.Conv2d(embed_dims, hidden, 1),
        ResidualDWConv(hidden) if dwconv else nn.Identity(),
        nn.GELU(),
        nn.Conv2d(hidden, embed_dims, 1),
    )


def pos_conv(embed_dims: int, kernel_size: int) -> Optional[nn.Conv2d]:
    """Depth-wise conv position embedding (added to the input), or None if ``kernel_size`` is 0."""
    if kernel_size <= 0:
        return None
    return nn.Conv2d(embed_dims, embed_dims, kernel_size, padding=kernel_size // 2,
                     groups=embed_dims)


def nchw_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_nchw(tokens: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """``(B, H*W, C)`` -> ``(B, C, H, W)``."""
    return tokens.transpose(1, 2).unflatten(2, hw)


class GLMixBlock(BaseModule):
    """GLMix block: local convs and global slot attention in parallel, then an MLP.

    The global branch, with ``n = normalize`` (L2 over channels) and learnable scale ``s``:
    ``A = s * n(init_slots) @ n(x)^T`` (slots x pixels); slots ``= softmax_pixels(A) @ x``;
    slots ``= MHSA(slots)``; pixels ``= softmax_slots(A^T) @ slots``. Both soft assignments are
    computed as fused attention, so ``A`` is never materialised (see :meth:`slot_logits`).

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
        self.feature_conv = nn.Sequential(
            nn.Conv2d(embed_dims, embed_dims, 1),
            nn.Conv2d(embed_dims, embed_dims, local_kernel, padding=local_kernel // 2,
                      groups=embed_dims),
            nn.Conv2d(embed_dims, embed_dims, 1),
        ) if local_kernel > 0 else nn.Identity()
        self.norm2 = LayerNorm2d(embed_dims)
        self.mlp = conv_mlp(embed_dims, mlp_ratio, mlp_dwconv)
        self.ls1 = make_layer_scale(embed_dims, layer_scale, channels_first=True)
        self.ls2 = make_layer_scale(embed_dims, layer_scale, channels_first=True)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def initial_slots(self, x: torch.Tensor) -> torch.Tensor:
        """Slot initialisation ``(B or 1, num_slots, C)`` from the block input ``x``."""
        if self.slot_init == 'param':
            return self.init_slots
        return nchw_to_tokens(F.adaptive_avg_pool2d(x, self.pool_size))

    def slot_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Clustering logits ``A`` of shape ``(B, num_slots, H*W)`` for the block input ``x``.

        Not used by :meth:`forward` (which never materialises them); for visualisation.
        """
        init_slots = self.initial_slots(x)
        if self.pos_conv is not None:
            x = x + self.pos_conv(x)
        pixels = F.normalize(nchw_to_tokens(self.norm1(x)), dim=-1)
        return self.slot_scale * F.normalize(init_slots, dim=-1) @ pixels.transpose(1, 2)

    def global_mixing(self, x: torch.Tensor, init_slots: torch.Tensor) -> torch.Tensor:
        """Cluster the (normalised) pixels ``x`` into slots, mix the slots, dispatch them back."""
        B, C, H, W = x.shape
        pixels = nchw_to_tokens(x).unsqueeze(1)  # (B, 1, L, C): one "head"
        pixel_keys = F.normalize(pixels, dim=-1)
        slot_keys = (self.slot_scale * F.normalize(init_slots, dim=-1)).expand(B, -1, -1)
        slot_keys = slot_keys.unsqueeze(1).to(pixels.dtype)  # (B, 1, S, C)
        slots = F.scaled_dot_product_attention(slot_keys, pixel_keys, pixels, scale=1.)
        slots = self.relation_mha(slots.squeeze(1)).unsqueeze(1)
        out = F.scaled_dot_product_attention(pixel_keys, slot_keys, slots, scale=1.)
        return tokens_to_nchw(out.squeeze(1), (H, W))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        init_slots = self.initial_slots(x)
        if self.pos_conv is not None:
            x = x + self.pos_conv(x)
        y = self.norm1(x)
        y = self.global_mixing(y, init_slots) + self.feature_conv(y)
        x = x + self.drop_path(self.ls1(y))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class MHSABlock(BaseModule):
    """Global multi-head self-attention block on NCHW maps, with a conv MLP.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Attention heads.
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
                 mlp_ratio: float = 4.,
                 mlp_dwconv: bool = False,
                 cpe_kernel: int = 0,
                 layer_scale: Optional[float] = None,
                 drop_path: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pos_conv = pos_conv(embed_dims, cpe_kernel)
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mha_op = MultiheadSelfAttention(embed_dims, num_heads)
        self.norm2 = LayerNorm2d(embed_dims)
        self.mlp = conv_mlp(embed_dims, mlp_ratio, mlp_dwconv)
        self.ls1 = make_layer_scale(embed_dims, layer_scale, channels_first=False)
        self.ls2 = make_layer_scale(embed_dims, layer_scale, channels_first=True)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pos_conv is not None:
            x = x + self.pos_conv(x)
        tokens = nchw_to_tokens(x)
        tokens = tokens + self.drop_path(self.ls1(self.mha_op(self.norm1(tokens))))
        x = tokens_to_nchw(tokens, x.shape[2:])
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class MHSATokenBlock(BaseModule):
    """Plain pre-norm transformer block on ``(B, L, C)`` tokens (the last stage of GLNet-STL).

    Args:
        embed_dims (int): Channels.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden / input channels of the MLP.
        layer_scale (float, optional): Initial layer scale; None disables it.
        drop_path (float): Stochastic depth rate.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 layer_scale: Optional[float] = None,
                 drop_path: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hidden = int(mlp_ratio * embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mha_op = MultiheadSelfAttention(embed_dims, num_heads)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.GELU(), nn.Linear(hidden, embed_dims))
        self.ls1 = make_layer_scale(embed_dims, layer_scale, channels_first=False)
        self.ls2 = make_layer_scale(embed_dims, layer_scale, channels_first=False)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.drop_path(self.ls1(self.mha_op(self.norm1(tokens))))
        return tokens + self.drop_path(self.ls2(self.mlp(self.norm2(tokens))))
