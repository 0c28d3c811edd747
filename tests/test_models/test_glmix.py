"""GLMix building blocks against plain, explicit formulations of the same math."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from glmix_mm.models.glmix import (GLMixBlock, LayerNorm2d, MHSABlock, MHSATokenBlock,
                                   MultiheadSelfAttention)


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


def explicit_glmix(block: GLMixBlock, x: torch.Tensor) -> torch.Tensor:
    """The GLMix block written out with materialised clustering logits."""
    if block.slot_init == 'param':
        init_slots = block.init_slots
    else:
        init_slots = F.adaptive_avg_pool2d(x, block.pool_size).flatten(2).transpose(1, 2)
    if block.pos_conv is not None:
        x = x + block.pos_conv(x)
    y = block.norm1(x)
    pixels = y.flatten(2).transpose(1, 2)  # (B, L, C)
    logits = F.normalize(init_slots, dim=-1) @ (
        block.slot_scale * F.normalize(pixels, dim=-1)).transpose(1, 2)  # (B, S, L)
    slots = logits.softmax(-1) @ pixels
    attn = nn.MultiheadAttention(y.shape[1], block.relation_mha.num_heads, batch_first=True)
    attn.load_state_dict(block.relation_mha.state_dict())
    slots = attn(slots, slots, slots, need_weights=False)[0]
    out = (logits.transpose(1, 2).softmax(-1) @ slots).transpose(1, 2).reshape_as(y)
    x = x + block.ls1(out + block.feature_conv(y))
    return x + block.ls2(block.mlp(block.norm2(x)))


@pytest.mark.parametrize('slot_init', ['ada_avgpool', 'param'])
@pytest.mark.parametrize('cpe_kernel,mlp_dwconv,layer_scale', [(0, False, None), (3, True, 0.5)])
def test_glmix_block_matches_explicit_clustering(slot_init, cpe_kernel, mlp_dwconv, layer_scale):
    block = randomize_(
        GLMixBlock(32, 2, num_slots=16, slot_init=slot_init, cpe_kernel=cpe_kernel,
                   mlp_dwconv=mlp_dwconv, layer_scale=layer_scale, mlp_ratio=2))
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


def test_mhsa_blocks_match_explicit_transformer_block():
    nchw = randomize_(MHSABlock(32, 4, mlp_ratio=2, cpe_kernel=3, mlp_dwconv=True,
                                layer_scale=0.5))
    tokens = randomize_(MHSATokenBlock(32, 4, mlp_ratio=2))
    x = torch.randn(2, 32, 4, 6)
    attn = nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        # NCHW block: conv position embedding, attention on tokens, conv MLP on the map.
        attn.load_state_dict(nchw.mha_op.state_dict())
        y = x + nchw.pos_conv(x)
        t = y.flatten(2).transpose(1, 2)
        n = nchw.norm1(t)
        t = t + nchw.ls1(attn(n, n, n, need_weights=False)[0])
        y = t.transpose(1, 2).reshape_as(x)
        ref = y + nchw.ls2(nchw.mlp(nchw.norm2(y)))
        torch.testing.assert_close(nchw(x), ref, rtol=1e-4, atol=1e-4)
        # Token block: the plain pre-norm transformer block.
        attn.load_state_dict(tokens.mha_op.state_dict())
        t = x.flatten(2).transpose(1, 2)
        n = tokens.norm1(t)
        t = t + attn(n, n, n, need_weights=False)[0]
        ref = t + tokens.mlp(tokens.norm2(t))
        torch.testing.assert_close(tokens(x.flatten(2).transpose(1, 2)), ref, rtol=1e-4,
                                   atol=1e-4)
