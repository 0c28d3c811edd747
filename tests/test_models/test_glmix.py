"""GLMix building blocks against plain, explicit formulations of the same math."""
from typing import Optional

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from glmix_mm.models.glmix import (ChunkedConvChain, GLMixBlock, LayerNorm2d, MHSABlock,
                                   MHSATokenBlock, MultiheadSelfAttention, ResidualDWConv,
                                   add_in_chunks, add_into, conv_mlp, forward_in_chunks,
                                   window_self_attention)


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (0.5 if p.dim() == 0 else 0))
    return module.eval()


def test_layer_norm_2d_matches_channel_layer_norm():
    norm = randomize_(LayerNorm2d(8))
    x = torch.randn(2, 8, 5, 7)
    ref = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) +
                                                     1e-6)
    ref = ref * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), ref, rtol=1e-5, atol=1e-5)


def test_self_attention_equals_torch_multihead_attention_with_same_weights():
    ours = randomize_(MultiheadSelfAttention(32, 4))
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


def set_chunk_pixels_(block: nn.Module, chunk_pixels: Optional[int]) -> None:
    """Force the chunking of a block's conv chains (None: the default budget)."""
    for chain in block.modules():
        if isinstance(chain, ChunkedConvChain) and chunk_pixels is not None:
            chain.chunk_pixels = chunk_pixels


# Chunk budgets of the conv chains: the default (one call at these sizes), groups of whole images
# (one 9x11 image each), bands of rows.
CHUNK_PIXELS = [None, 120, 40]


@pytest.mark.parametrize('slot_init', ['ada_avgpool', 'param'])
@pytest.mark.parametrize('cpe_kernel,mlp_dwconv,layer_scale', [(0, False, None), (3, True, 0.5)])
@pytest.mark.parametrize('chunk_pixels', CHUNK_PIXELS)
def test_glmix_block_matches_explicit_clustering(slot_init, cpe_kernel, mlp_dwconv, layer_scale,
                                                 chunk_pixels):
    block = randomize_(
        GLMixBlock(32, 2, num_slots=16, slot_init=slot_init, cpe_kernel=cpe_kernel,
                   mlp_dwconv=mlp_dwconv, layer_scale=layer_scale, mlp_ratio=2))
    set_chunk_pixels_(block, chunk_pixels)
    x = torch.randn(2, 32, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(block(x), explicit_glmix(block, x), rtol=1e-4, atol=1e-4)


def test_slot_logits_shape_and_softmax_assignment():
    block = randomize_(GLMixBlock(16, 1, num_slots=4))
    logits = block.slot_logits(torch.randn(1, 16, 6, 5))
    assert logits.shape == (1, 4, 30)


def test_glmix_block_rejects_bad_slot_settings():
    with pytest.raises(ValueError, match='square'):
        GLMixBlock(16, 1, num_slots=10)
    with pytest.raises(ValueError, match='slot_init'):
        GLMixBlock(16, 1, slot_init='kmeans')


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('chunk_pixels', [None, 30, 10])  # one call, image groups, row bands
def test_mhsa_blocks_match_explicit_transformer_block(channels_last, chunk_pixels):
    nchw = randomize_(MHSABlock(32, 4, mlp_ratio=2, cpe_kernel=3, mlp_dwconv=True,
                                layer_scale=0.5))
    set_chunk_pixels_(nchw, chunk_pixels)
    tokens = randomize_(MHSATokenBlock(32, 4, mlp_ratio=2))
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
    conv = randomize_(ResidualDWConv(8, 5))
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
    attn = randomize_(MultiheadSelfAttention(16, 2))
    x = torch.randn(2, *hw, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            window_self_attention(attn, x, window), explicit_windows(attn, x, window),
            rtol=1e-4, atol=1e-4)


def test_window_covering_the_map_is_global_attention():
    attn = randomize_(MultiheadSelfAttention(16, 2))
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


def test_add_into_writes_into_the_branch_only_when_exact():
    x, branch = torch.randn(2, 3), torch.randn(2, 3)
    expected = x + branch
    out = add_into(branch, x)
    assert out is branch
    torch.testing.assert_close(out, expected)
    half = torch.randn(2, 3).to(torch.bfloat16)  # an fp32 sum must not be rounded into bf16
    out = add_into(half, x)
    assert out.dtype == torch.float32 and out is not half
    assert add_into(torch.randn(1, 3), x).shape == (2, 3)  # broadcasting: a new tensor


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
    """The in-place residual additions leave autograd intact: same gradients as out of place."""
    block = randomize_(GLMixBlock(16, 2, num_slots=4, cpe_kernel=3, mlp_dwconv=True,
                                  layer_scale=layer_scale, drop_path=drop_path)).train()
    assert_same_gradients_as_explicit(block, torch.randn(2, 16, 6, 5, requires_grad=True))


@pytest.mark.parametrize('window', [None, 4])
def test_mhsa_blocks_train_with_in_place_additions(window):
    blocks = [(MHSABlock(16, 2, cpe_kernel=3, mlp_dwconv=True, layer_scale=0.5, drop_path=0.3,
                         window=window), torch.randn(2, 16, 6, 5)),
              (MHSATokenBlock(16, 2, drop_path=0.3, window=window), torch.randn(2, 6, 5, 16))]
    for block, inp in blocks:
        inp.requires_grad_()
        block.train()(inp).square().sum().backward()
        assert torch.isfinite(inp.grad).all() and inp.grad.abs().sum() > 0
        assert all(p.grad is not None for p in block.parameters())


@pytest.mark.parametrize('shape,max_pixels', [
    ((5, 8, 6, 7), 100),  # groups of whole images: 2, 2, 1
    ((2, 8, 23, 9), 40),  # bands of rows with halo context
    ((1, 8, 23, 9), 9),  # one-row bands (narrower than the halo)
    ((3, 8, 4, 4), 1000),  # one chunk: a plain call
])
def test_forward_in_chunks_equals_one_call(shape, max_pixels):
    chain = randomize_(ChunkedConvChain(
        nn.Conv2d(8, 12, 1), nn.Conv2d(12, 12, 5, padding=2, groups=12), nn.GELU(),
        ResidualDWConv(12), nn.Conv2d(12, 8, 1), halo=3, width=12))
    plain = super(ChunkedConvChain, chain).forward
    x = torch.randn(shape)
    calls = []

    def counted(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape)
        return plain(t)

    with torch.no_grad():
        ref = plain(x)
        got = forward_in_chunks(counted, x, 3, max_pixels)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert (len(calls) > 1) == (shape[0] * shape[2] * shape[3] > max_pixels)
    # While autograd records (training), one call: chunks would keep their halo rows too.
    calls.clear()
    x.requires_grad_()
    forward_in_chunks(counted, x, 3, max_pixels).sum().backward()
    assert len(calls) == 1 and x.grad is not None


@pytest.mark.parametrize('shape,max_pixels,into_x,in_place', [
    ((5, 8, 6, 7), 100, False, True),  # groups of whole images
    ((5, 8, 6, 7), 100, True, True),  # groups of whole images, added into the input itself
    ((2, 8, 23, 9), 40, False, True),  # bands of rows
    ((2, 8, 23, 9), 40, True, False),  # bands of the input itself: one addition
    ((3, 8, 4, 4), 1000, False, False),  # one chunk: one addition
])
def test_add_in_chunks_equals_one_addition(shape, max_pixels, into_x, in_place):
    chain = randomize_(ChunkedConvChain(
        nn.Conv2d(8, 12, 1), nn.Conv2d(12, 12, 5, padding=2, groups=12), nn.GELU(),
        nn.Conv2d(12, 8, 1), halo=2, width=12))
    plain = chain.branch()
    x = torch.randn(shape)
    out = x if into_x else torch.randn(shape)
    with torch.no_grad():
        ref = out + plain(x)
        got = add_in_chunks(plain, x, out, 2, max_pixels)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert (got is out) == in_place


def test_add_in_chunks_leaves_inputs_alone_while_autograd_records():
    identity = ChunkedConvChain(halo=0, width=8)
    x = torch.randn(4, 8, 5, 5, requires_grad=True)
    out = torch.randn(4, 8, 5, 5, requires_grad=True)
    before = x.detach().clone(), out.detach().clone()
    got = identity.add_to(out * 1, x, post=lambda t: 2 * t)
    got.sum().backward()
    assert torch.equal(x.detach(), before[0]) and torch.equal(out.detach(), before[1])
    assert torch.equal(x.grad, torch.full_like(x, 2.))
    assert torch.equal(out.grad, torch.ones_like(out))
    # The identity without ``post``: ``out + x``, neither written into.
    got = identity.add_to(out * 1, x)
    torch.testing.assert_close(got, out + x)
    assert torch.equal(x.detach(), before[0])


def test_conv_mlp_chunking_with_pre_norm_matches_plain_mlp():
    mlp = randomize_(conv_mlp(8, 3, dwconv=True))
    norm = randomize_(LayerNorm2d(8))
    mlp.chunk_pixels = 50  # force bands on a 1x8x40x30 map
    x = torch.randn(1, 8, 40, 30).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = super(ChunkedConvChain, mlp).forward(norm(x))
        torch.testing.assert_close(mlp(x, pre_norm=norm), ref, rtol=1e-5, atol=1e-5)


def test_glmix_block_without_local_convs_adds_the_normalised_input():
    """local_kernel=0: the local branch is the identity; the slot output it is added into is
    the block's own, so the block input and the norm's output are left untouched."""
    block = randomize_(GLMixBlock(16, 2, num_slots=4, local_kernel=0, layer_scale=0.5)).train()
    x = torch.randn(2, 16, 6, 5, requires_grad=True)
    with torch.no_grad():
        torch.testing.assert_close(block(x), explicit_glmix(block, x), rtol=1e-4, atol=1e-5)
    assert_same_gradients_as_explicit(block, x)
