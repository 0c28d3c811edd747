"""GLMix building blocks against plain, explicit formulations of the same math."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from glmix_mm.models.glmix import (GLMixBlock, LayerNorm2d, MHSABlock, MHSATokenBlock,
                                   MultiheadSelfAttention)
from glmix_mm.models.layers import (ResidualDWConv, adaptive_avg_pool_tokens,
                                    window_self_attention)

from fakes import randomize_parameters


def test_layer_norm_2d_matches_channel_layer_norm():
    norm = randomize_parameters(LayerNorm2d(8))
    x = torch.randn(2, 8, 5, 7)
    ref = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) +
                                                     1e-6)
    ref = ref * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), ref, rtol=1e-5, atol=1e-5)


def test_self_attention_equals_torch_multihead_attention_with_same_weights():
    ours = randomize_parameters(MultiheadSelfAttention(32, 4))
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())  # same parameter names and shapes
    x = torch.randn(2, 10, 32)
    torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0], rtol=1e-5,
                               atol=1e-5)


def test_self_attention_rejects_bad_head_count():
    with pytest.raises(ValueError, match='divisible'):
        MultiheadSelfAttention(30, 4)


def explicit_residual_dwconv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x + DWConv(x)`` (``x`` when the module is an identity), as two separate operations."""
    if isinstance(conv, nn.Identity):
        return x
    return x + F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, groups=conv.groups)


def explicit_conv_mlp(mlp: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    x = mlp[0](x)
    if not isinstance(mlp[1], nn.Identity):
        x = explicit_residual_dwconv(mlp[1], x)
    return mlp[3](F.gelu(x))


def explicit_attention(module: MultiheadSelfAttention, tokens: torch.Tensor) -> torch.Tensor:
    """Multi-head self-attention written out with the parameters of ``module``."""
    B, L, C = tokens.shape
    heads = module.num_heads
    q, k, v = F.linear(tokens, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(B, L, heads, C // heads).transpose(1, 2) for t in (q, k, v))
    attn = (q @ k.transpose(-1, -2) * (C // heads)**-0.5).softmax(-1)
    return module.out_proj((attn @ v).transpose(1, 2).reshape(B, L, C))


def explicit_glmix(block: GLMixBlock, x: torch.Tensor) -> torch.Tensor:
    """The GLMix block written out with materialised clustering logits."""
    if block.slot_init == 'param':
        init_slots = block.init_slots
    else:
        init_slots = F.adaptive_avg_pool2d(x, block.pool_size).flatten(2).transpose(1, 2)
    x = explicit_residual_dwconv(block.pos_conv, x)
    y = block.norm1(x)
    pixels = y.flatten(2).transpose(1, 2)  # (B, L, C)
    logits = F.normalize(init_slots, dim=-1) @ (
        block.slot_scale * F.normalize(pixels, dim=-1)).transpose(1, 2)  # (B, S, L)
    slots = logits.softmax(-1) @ pixels
    slots = explicit_attention(block.relation_mha, slots)
    out = (logits.transpose(1, 2).softmax(-1) @ slots).transpose(1, 2).reshape_as(y)
    x = x + block.drop_path(block.ls1(out + block.feature_conv(y)))
    return x + block.drop_path(block.ls2(explicit_conv_mlp(block.mlp, block.norm2(x))))


@pytest.mark.parametrize('slot_init', ['ada_avgpool', 'param'])
@pytest.mark.parametrize('cpe_kernel,mlp_dwconv,layer_scale', [(0, False, None), (3, True, 0.5)])
def test_glmix_block_matches_explicit_clustering(slot_init, cpe_kernel, mlp_dwconv, layer_scale):
    block = randomize_parameters(
        GLMixBlock(32, 2, num_slots=16, slot_init=slot_init, cpe_kernel=cpe_kernel,
                   mlp_dwconv=mlp_dwconv, layer_scale=layer_scale, mlp_ratio=2))
    x = torch.randn(2, 32, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(block(x), explicit_glmix(block, x), rtol=1e-4, atol=1e-4)


def test_slot_logits_shape_and_softmax_assignment():
    block = randomize_parameters(GLMixBlock(16, 1, num_slots=4))
    logits = block.slot_logits(torch.randn(1, 16, 6, 5))
    assert logits.shape == (1, 4, 30)


def test_glmix_block_rejects_bad_slot_settings():
    with pytest.raises(ValueError, match='square'):
        GLMixBlock(16, 1, num_slots=10)
    with pytest.raises(ValueError, match='slot_init'):
        GLMixBlock(16, 1, slot_init='kmeans')


@pytest.mark.parametrize('channels_last', [False, True])
def test_mhsa_blocks_match_explicit_transformer_block(channels_last):
    nchw = randomize_parameters(
        MHSABlock(32, 4, mlp_ratio=2, cpe_kernel=3, mlp_dwconv=True, layer_scale=0.5))
    tokens = randomize_parameters(MHSATokenBlock(32, 4, mlp_ratio=2))
    x = torch.randn(2, 32, 4, 6)
    with torch.no_grad():
        # NCHW block: conv position embedding, attention on tokens, conv MLP on the map.
        y = explicit_residual_dwconv(nchw.pos_conv, x)
        t = y.flatten(2).transpose(1, 2)
        t = t + nchw.ls1(explicit_attention(nchw.mha_op, nchw.norm1(t)))
        y = t.transpose(1, 2).reshape_as(x)
        ref = y + nchw.ls2(explicit_conv_mlp(nchw.mlp, nchw.norm2(y)))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(nchw(x), ref, rtol=1e-4, atol=1e-4)
        # Token block: the plain pre-norm transformer block, on (B, L, C) and (B, H, W, C).
        t = x.flatten(2).transpose(1, 2)
        t = t + explicit_attention(tokens.mha_op, tokens.norm1(t))
        ref = t + tokens.mlp(tokens.norm2(t))
        torch.testing.assert_close(tokens(t.clone() * 0 + x.flatten(2).transpose(1, 2)), ref,
                                   rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(
            tokens(x.permute(0, 2, 3, 1)), ref.view(2, 4, 6, 32), rtol=1e-4, atol=1e-4)


def test_residual_dwconv_equals_input_plus_conv_and_keeps_checkpoint_keys():
    conv = randomize_parameters(ResidualDWConv(8, 5))
    x = torch.randn(2, 8, 7, 9)
    torch.testing.assert_close(conv(x), explicit_residual_dwconv(conv, x), rtol=1e-5, atol=1e-5)
    assert set(conv.state_dict()) == {'weight', 'bias'}  # the identity kernel is not saved
    conv(x).square().sum().backward()
    ref_w = conv.weight.detach().clone().requires_grad_()
    (x + F.conv2d(x, ref_w, conv.bias.detach(), padding=2, groups=8)).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, ref_w.grad, rtol=1e-4, atol=1e-3)


def explicit_windows(attn: MultiheadSelfAttention, x: torch.Tensor, window: int) -> torch.Tensor:
    """Attention separately inside each (edge-cropped) window of a (B, H, W, C) map."""
    out = torch.empty_like(x)
    for i in range(0, x.shape[1], window):
        for j in range(0, x.shape[2], window):
            part = x[:, i:i + window, j:j + window]
            out[:, i:i + window, j:j + window] = explicit_attention(
                attn, part.flatten(1, 2)).view_as(part)
    return out


@pytest.mark.parametrize('hw,window', [((6, 9), 3), ((5, 7), 3), ((4, 4), 3), ((5, 7), 1),
                                       ((2, 7), 3), ((5, 2), 4)])
def test_window_attention_matches_per_window_attention(hw, window):
    attn = randomize_parameters(MultiheadSelfAttention(16, 2))
    x = torch.randn(2, *hw, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            window_self_attention(attn, x, window), explicit_windows(attn, x, window),
            rtol=1e-4, atol=1e-4)


def test_window_covering_the_map_is_global_attention():
    attn = randomize_parameters(MultiheadSelfAttention(16, 2))
    x = torch.randn(2, 5, 6, 16)
    with torch.no_grad():
        glob = attn(x.flatten(1, 2)).view_as(x)
        for window in (6, 7, 14):
            torch.testing.assert_close(window_self_attention(attn, x, window), glob, rtol=1e-5,
                                       atol=1e-5)


@pytest.mark.parametrize('window', [0, -2, 3.5, '7', True])
def test_blocks_reject_bad_windows(window):
    with pytest.raises(ValueError, match='window'):
        MHSABlock(16, 2, window=window)
    with pytest.raises(ValueError, match='window'):
        MHSATokenBlock(16, 2, window=window)


def assert_same_gradients_as_explicit(block: GLMixBlock, x: torch.Tensor) -> None:
    """Parameter and input gradients of ``block`` equal those of :func:`explicit_glmix`."""
    grads = []
    for forward in (block, lambda inp: explicit_glmix(block, inp)):
        torch.manual_seed(1)  # same drop-path draws
        forward(x).square().sum().backward()
        grads.append([p.grad.clone() for p in block.parameters()] + [x.grad.clone()])
        block.zero_grad()
        x.grad = None
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('layer_scale,drop_path', [(None, 0.), (0.5, 0.), (0.5, 0.3)])
def test_block_gradients_equal_explicit_formulation(layer_scale, drop_path):
    """Autograd through the block equals autograd through the explicit formulation."""
    block = randomize_parameters(
        GLMixBlock(16, 2, num_slots=4, cpe_kernel=3, mlp_dwconv=True, layer_scale=layer_scale,
                   drop_path=drop_path)).train()
    assert_same_gradients_as_explicit(block, torch.randn(2, 16, 6, 5, requires_grad=True))


@pytest.mark.parametrize('window', [None, 4])
def test_mhsa_blocks_train_with_gradients_everywhere(window):
    blocks = [(MHSABlock(16, 2, cpe_kernel=3, mlp_dwconv=True, layer_scale=0.5, drop_path=0.3,
                         window=window), torch.randn(2, 16, 6, 5)),
              (MHSATokenBlock(16, 2, drop_path=0.3, window=window), torch.randn(2, 6, 5, 16))]
    for block, inp in blocks:
        inp.requires_grad_()
        block.train()(inp).square().sum().backward()
        assert torch.isfinite(inp.grad).all() and inp.grad.abs().sum() > 0
        assert all(p.grad is not None for p in block.parameters())


def test_glmix_block_without_local_convs_adds_the_normalised_input():
    """local_kernel=0: the local branch is the identity (the normalised input is added)."""
    block = randomize_parameters(
        GLMixBlock(16, 2, num_slots=4, local_kernel=0, layer_scale=0.5)).train()
    x = torch.randn(2, 16, 6, 5, requires_grad=True)
    with torch.no_grad():
        torch.testing.assert_close(block(x), explicit_glmix(block, x), rtol=1e-4, atol=1e-5)
    assert_same_gradients_as_explicit(block, x)


@pytest.mark.parametrize('hw', [(8, 8), (16, 24), (28, 28), (7, 9), (5, 3), (1, 1), (13, 200),
                                (50, 80), (9, 8)])
@pytest.mark.parametrize('size', [8, 3])
def test_averaging_matrix_pooling_equals_adaptive_avg_pool(hw, size):
    """Exact at every size: multiples of the grid, other sizes, maps smaller than the grid."""
    x = torch.randn(2, 5, *hw).contiguous(memory_format=torch.channels_last)
    ref = F.adaptive_avg_pool2d(x, size).flatten(2).transpose(1, 2)
    got = adaptive_avg_pool_tokens(x, size)
    assert got.shape == (2, size * size, 5)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(adaptive_avg_pool_tokens(x.contiguous(), size), ref, rtol=1e-6,
                               atol=1e-6)
