"""CPU cache blocking: the same results as the plain model, used in eager CPU inference only."""
import pytest
import torch
import torch.nn as nn

from glmix_mm.models import GLNet, cpu_blocking
from glmix_mm.models.cpu_blocking import (add_in_chunks, add_into, block_forward,
                                          forward_in_chunks, image_groups)
from glmix_mm.models.glmix import GLMixBlock, LayerNorm2d, MHSABlock, conv_mlp
from glmix_mm.models.layers import ResidualDWConv

from fakes import randomize_parameters


def conv_chain(halo_kernel: int = 5) -> nn.Sequential:
    return randomize_parameters(nn.Sequential(
        nn.Conv2d(8, 12, 1), nn.Conv2d(12, 12, halo_kernel, padding=halo_kernel // 2, groups=12),
        nn.GELU(), ResidualDWConv(12), nn.Conv2d(12, 8, 1)))


def test_chain_geometry_counts_context_rows_and_widest_map():
    assert cpu_blocking.chain_geometry(conv_chain(5)) == (3, 12)  # 5x5 + residual 3x3 DW conv
    assert cpu_blocking.chain_geometry(conv_mlp(8, 3, dwconv=False)) == (0, 24)
    assert cpu_blocking.chain_geometry(nn.Identity()) == (0, 1)


@pytest.mark.parametrize('shape,max_pixels', [
    ((5, 8, 6, 7), 100),  # groups of whole images: 2, 2, 1
    ((2, 8, 23, 9), 40),  # bands of rows with halo context
    ((1, 8, 23, 9), 9),  # one-row bands (narrower than the halo)
    ((3, 8, 4, 4), 1000),  # one chunk: a plain call
])
def test_forward_in_chunks_equals_one_call(shape, max_pixels):
    chain = conv_chain()
    x = torch.randn(shape)
    calls = []

    def counted(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape)
        return chain(t)

    with torch.no_grad():
        ref = chain(x)
        got = forward_in_chunks(counted, x, 3, max_pixels)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert (len(calls) > 1) == (shape[0] * shape[2] * shape[3] > max_pixels)


@pytest.mark.parametrize('shape,max_pixels,into_x,in_place', [
    ((5, 8, 6, 7), 100, False, True),  # groups of whole images
    ((5, 8, 6, 7), 100, True, True),  # groups of whole images, added into the input itself
    ((2, 8, 23, 9), 40, False, True),  # bands of rows
    ((2, 8, 23, 9), 40, True, False),  # bands of the input itself: one addition
    ((3, 8, 4, 4), 1000, False, False),  # one chunk: one addition
])
def test_add_in_chunks_equals_one_addition(shape, max_pixels, into_x, in_place):
    chain = conv_chain()
    x = torch.randn(shape)
    out = x if into_x else torch.randn(shape)
    with torch.no_grad():
        ref = out + chain(x)
        got = add_in_chunks(chain, x, out, 3, max_pixels)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert (got is out) == in_place


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


def test_image_groups_are_balanced_and_cover_every_image():
    assert image_groups(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 6)]
    assert image_groups(4, 0) == [slice(i, i + 1) for i in range(4)]
    assert image_groups(0, 3) == [slice(None)]  # an empty batch: one (empty) call


# Budgets of the widest map, in elements: the default (one call at these sizes), groups of
# whole images, bands of rows (the blocks' widest chains have 64 channels).
BUDGETS = [None, 64 * 120, 64 * 40]


@pytest.mark.parametrize('budget', BUDGETS)
@pytest.mark.parametrize('local_kernel', [5, 0])
def test_blocked_glmix_block_equals_plain(budget, local_kernel, monkeypatch):
    if budget is not None:
        monkeypatch.setattr(cpu_blocking, 'CHUNK_ELEMENTS', budget)
    block = randomize_parameters(
        GLMixBlock(32, 2, num_slots=16, cpe_kernel=3, mlp_dwconv=True, layer_scale=0.5,
                   mlp_ratio=2, local_kernel=local_kernel))
    x = torch.randn(2, 32, 9, 11).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = block(x)
        before = x.clone()
        torch.testing.assert_close(block_forward(block, x), ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(x, before)  # the block input is not written into


@pytest.mark.parametrize('budget', [None, 64 * 30, 64 * 10])
def test_blocked_mhsa_block_equals_plain(budget, monkeypatch):
    if budget is not None:
        monkeypatch.setattr(cpu_blocking, 'CHUNK_ELEMENTS', budget)
    block = randomize_parameters(
        MHSABlock(32, 4, mlp_ratio=2, cpe_kernel=3, mlp_dwconv=True, layer_scale=0.5))
    x = torch.randn(2, 32, 4, 6).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(block_forward(block, x), block(x), rtol=1e-5, atol=1e-5)


def test_blocked_mlp_with_pre_norm_in_row_bands_matches_plain(monkeypatch):
    monkeypatch.setattr(cpu_blocking, 'CHUNK_ELEMENTS', 24 * 50)  # bands of a 1x8x40x30 map
    mlp = randomize_parameters(conv_mlp(8, 3, dwconv=True))
    norm = randomize_parameters(LayerNorm2d(8))
    x = torch.randn(1, 8, 40, 30).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = torch.randn_like(x) + mlp(norm(x))
        out = ref - mlp(norm(x))
        torch.testing.assert_close(cpu_blocking.add_chain(mlp, x, out, pre=norm), ref,
                                   rtol=1e-5, atol=1e-5)


def build_pair(arch: str) -> tuple:
    """Two copies of a GLNet with the same random weights (one to run plain)."""
    torch.manual_seed(0)
    model = GLNet(arch, out_norm=None).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    return model


def plain_forward(model: GLNet, x: torch.Tensor) -> tuple:
    """The model with cache blocking switched off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpu_blocking, 'applies', lambda *args: False)
        return model(x)


@pytest.mark.parametrize('arch', ['stl', '4g'])
def test_glnet_cpu_inference_is_blocked_and_equals_the_plain_model(arch, monkeypatch):
    model = build_pair(arch)
    calls = []
    monkeypatch.setattr(cpu_blocking, 'BLOCKED_FORWARDS', {
        cls: (lambda cls, fn: lambda b, x: calls.append(cls) or fn(b, x))(cls, fn)
        for cls, fn in cpu_blocking.BLOCKED_FORWARDS.items()})
    # Budget of two images' widest stem maps and small chunks in the blocks.
    monkeypatch.setattr(cpu_blocking, 'CHUNK_ELEMENTS', int(2 * 64 * 96 * model.stem_elements))
    stem_batches = []
    stem = model.downsample_layers[0]
    monkeypatch.setattr(stem, 'forward', lambda t, forward=stem.forward: stem_batches.append(
        t.shape[0]) or forward(t))
    x = torch.randn(5, 3, 64, 96)
    with torch.no_grad():
        ref = plain_forward(model, x)
        assert stem_batches == [5] and not calls
        stem_batches.clear()
        got = model(x)
    assert stem_batches == [2, 2, 1] and GLMixBlock in calls
    for a, b in zip(got, ref):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_plain_execution_never_blocks(monkeypatch):
    """``execution='plain'``: eager CPU inference runs the blocks as written, same results."""
    model = build_pair('4g')
    plain = GLNet('4g', out_norm=None, execution='plain').eval()
    plain.load_state_dict(model.state_dict())
    calls = []
    monkeypatch.setattr(cpu_blocking, 'block_forward',
                        lambda block, x: calls.append(block) or block(x))
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref = model(x)
        assert calls and model.cache_blocked(x)
        calls.clear()
        got = plain(x)
    assert not calls and not plain.cache_blocked(x)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


class Probe(nn.Module):

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.fn(t)


def test_blocking_steps_aside_in_training_autograd_and_capture():
    model = build_pair('stl')
    x = torch.randn(1, 3, 32, 32)
    assert cpu_blocking.applies(x, model)
    assert not cpu_blocking.applies(x, model.train())
    model.eval()
    assert not cpu_blocking.applies(x.requires_grad_(), model)
    x = x.detach()
    seen = []

    def probe(t: torch.Tensor) -> torch.Tensor:
        seen.append(cpu_blocking.applies(t, model))
        return t * 2

    captures = {
        'jit.trace': lambda: torch.jit.trace(probe, x, check_trace=False),
        'fx': lambda: torch.fx.symbolic_trace(probe),
        'compile': lambda: torch.compile(probe, backend='eager', fullgraph=True)(x),
        'export': lambda: torch.export.export(Probe(probe), (x, )),
    }
    for name, capture in captures.items():
        seen.clear()
        capture()
        assert seen and not any(seen), name
    assert cpu_blocking.applies(x, model)  # eager again


@pytest.mark.parametrize('arch', ['stl', '4g'])
def test_empty_batch_in_cpu_inference(arch):
    model = build_pair(arch)
    with torch.no_grad():
        outs = model(torch.randn(0, 3, 64, 64))
    assert [o.shape[0] for o in outs] == [0] * 4
    assert [o.shape[1] for o in outs] == model.out_channels


def test_forward_hooks_see_the_plain_model():
    """A hook on a block (feature visualisation, probing) sees it called once on whole maps."""
    model = build_pair('4g')
    seen = []
    block = model.stages[0].blocks[0]
    block.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 96))
    assert seen == [(2, 64, 16, 24)]
    assert not cpu_blocking.applies(torch.randn(1, 3, 8, 8), model)
