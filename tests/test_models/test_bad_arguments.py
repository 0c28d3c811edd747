"""Bad and unusual backbone arguments, inputs and checkpoint files (docs/reliability.md, "Bad
input"): each is refused at build time or at the call with one line that names the problem, or
works and gives the right result.

Forward passes use small custom archs (one block per stage) with the layouts of the released
ones: overlapped patch embeddings with GLMix / MHSA stages (4G/9G/16G) and non-overlapped ones
with a token MHSA last stage (STL).
"""
import pytest
import torch

import glmix_mm  # noqa: F401  (registers the models and the safe checkpoint loader)
from glmix_mm.models import Conformer, GLNet

SMALL = dict(depths=[1, 1, 1, 1], embed_dims=[32, 64, 96, 128], mlp_ratios=[2, 2, 2, 2],
             num_slots=4, layer_scale=None)
LAYOUTS = {
    '4g-like': dict(SMALL, mixers=['glmix', 'glmix', 'glmix+mhsa', 'mhsa'],
                    slot_init='ada_avgpool', patch_embed='overlapped', cpe_kernel=3,
                    mlp_dwconv=True),
    'stl-like': dict(SMALL, mixers=['glmix', 'glmix', 'glmix', 'mhsa_tokens'],
                     slot_init='ada_avgpool', patch_embed='non_overlapped', cpe_kernel=0,
                     mlp_dwconv=False),
}


@pytest.fixture(scope='module', params=sorted(LAYOUTS))
def small_glnet(request):
    torch.manual_seed(0)
    return GLNet(LAYOUTS[request.param]).eval()


@pytest.fixture(scope='module')
def small_conformer():
    torch.manual_seed(0)
    return Conformer(arch=dict(embed_dims=64, depths=6, num_heads=2, channel_ratio=1)).eval()


def forward(model, x):
    with torch.no_grad():
        return model(x)


# ---------------------------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(arch='tiny'), ValueError, r"Unknown GLNet arch 'tiny'; choose one of .*'4g'"),
    (dict(out_indices=(1, 1)), ValueError, r'names a stage twice: \(1, 1\)'),
    (dict(out_indices=(4, )), ValueError, r'stage indices in 0\.\.3 .*got \(4,\)'),
    (dict(out_indices=(-5, )), ValueError, r'got \(-5,\)'),
    (dict(out_indices=()), ValueError, r'stage indices in 0\.\.3'),
    (dict(out_indices=('1', )), TypeError, r"sequence of ints .*got \('1',\)"),
    (dict(out_indices=(1.0, )), TypeError, r'sequence of ints .*got \(1\.0,\)'),
    (dict(frozen_stages=5), ValueError, r'frozen_stages must be an int in -1\.\.4, got 5'),
    (dict(frozen_stages=1.5), ValueError, r'frozen_stages must be an int in -1\.\.4, got 1\.5'),
    (dict(frozen_stages=True), ValueError, r'frozen_stages must be an int in -1\.\.4, got True'),
    (dict(drop_path_rate=-0.1), ValueError, r'drop_path_rate must be a number in \[0, 1\)'),
    (dict(drop_path_rate=1.0), ValueError, r'drop_path_rate must be a number in \[0, 1\)'),
    (dict(mhsa_window=0), ValueError, 'window must be a positive int or None'),
    (dict(mhsa_window=True), ValueError, 'window must be a positive int or None'),
    (dict(mhsa_window=-7), ValueError, 'window must be a positive int or None'),
    (dict(execution='cpu'), ValueError, r"execution must be one of \('auto', 'plain'\), got 'cpu'"),
    (dict(in_channels=0), ValueError, 'in_channels must be a positive int, got 0'),
    (dict(norm_cfg=dict(type='BNN')), ValueError, r"norm_cfg: unknown norm type 'BNN'.*'BN'"),
    (dict(norm_cfg='BN'), TypeError, 'norm_cfg must be a dict with a type'),
    (dict(out_norm=dict(type='LN')), ValueError, r"'LN' normalises the last dimension.*LN2d"),
    (dict(arch=dict(LAYOUTS['4g-like'], depths=[1, 1, 1])), ValueError,
     'depths must list 4 values'),
    (dict(arch=dict(LAYOUTS['4g-like'], head_dim=48)), ValueError,
     r'head_dim 48 must divide every embed_dims entry, not \[32, 64, 128\]'),
    (dict(arch=dict(LAYOUTS['4g-like'], num_slots=5)), ValueError, 'square num_slots'),
    (dict(arch=['4g']), TypeError, 'arch must be a str or a dict'),
])
def test_glnet_bad_arguments_are_refused_at_build(kwargs, error, message):
    with pytest.raises(error, match=message):
        GLNet(**{'arch': 'stl', **kwargs})


def test_glnet_out_indices_int_and_negative():
    """An int is one stage, negative indices count from the end (as in MMPretrain); the
    outputs and out_channels follow."""
    model = GLNet(LAYOUTS['4g-like'], out_indices=-1).eval()
    assert model.out_indices == (3, ) and model.out_channels == [128]
    model = GLNet(LAYOUTS['4g-like'], out_indices=(-1, 0)).eval()
    outs = forward(model, torch.randn(1, 3, 64, 64))
    assert model.out_indices == (0, 3) and [o.shape[1] for o in outs] == [32, 128]


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(arch='huge'), ValueError, r"Unknown Conformer arch 'huge'"),
    (dict(patch_size=8), ValueError, r'patch_size \(16, 32\), got 8'),
    (dict(patch_size='16'), ValueError, r"patch_size \(16, 32\), got '16'"),
    (dict(out_indices=(0, 4)), ValueError, r'got \(0, 4\)'),
    (dict(out_indices=(2, 2)), ValueError, 'names a stage twice'),
    (dict(out_indices=('1', )), TypeError, 'sequence of ints'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages must be an int in -1..4'),
    (dict(frozen_stages=1.5), ValueError, r'frozen_stages must be an int in -1\.\.4, got 1\.5'),
    (dict(drop_path_rate=1.0), ValueError, r'drop_path_rate must be a number in \[0, 1\)'),
    (dict(drop_path_rate=-0.1), ValueError, r'drop_path_rate must be a number in \[0, 1\)'),
])
def test_conformer_bad_arguments_are_refused_at_build(kwargs, error, message):
    with pytest.raises(error, match=message):
        Conformer(**{'arch': 'tiny', **kwargs})


def test_conformer_out_indices_int_and_negative(small_conformer):
    model = Conformer(arch=dict(embed_dims=64, depths=6, num_heads=2, channel_ratio=1),
                      out_indices=-1).eval()
    assert model.out_indices == (3, ) and model.out_channels == (256, )
    model.load_state_dict(small_conformer.state_dict())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(forward(model, x)[0], forward(small_conformer, x)[3])


# ---------------------------------------------------------------------------------------------
# Inputs


@pytest.mark.parametrize('x,error,message', [
    (torch.randn(3, 64, 64), ValueError, r'\(N, 3, H, W\), got (shape )?\(3, 64, 64\)\. Add a '
     r'batch dimension \(x\[None\]\)'),
    (torch.randn(1, 1, 3, 64, 64), ValueError, r'\(N, 3, H, W\), got (shape )?\(1, 1, 3, 64, '
     r'64\)'),
    (torch.randn(1, 1, 64, 64), ValueError, r'\(N, 3, H, W\), got (shape )?\(1, 1, 64, 64\)'),
    (torch.randn(1, 3, 0, 64), ValueError, 'empty image batch'),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError,
     'floating-point image batch .*got torch.uint8'),
    (torch.randn(1, 3, 64, 64).numpy(), TypeError, 'torch.Tensor image batch, got ndarray'),
])
def test_bad_inputs_are_refused_with_one_line(small_glnet, small_conformer, x, error, message):
    for model in (small_glnet, small_conformer):
        with pytest.raises(error, match=message):
            forward(model, x)


def test_grayscale_input_with_in_channels_1():
    model = GLNet(LAYOUTS['4g-like'], in_channels=1).eval()
    outs = forward(model, torch.randn(2, 1, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 16, 16), (2, 64, 8, 8), (2, 96, 4, 4),
                                              (2, 128, 2, 2)]


@pytest.mark.parametrize('hw', [(1, 1), (7, 7), (31, 31), (16, 512), (1, 300)])
def test_glnet_tiny_and_elongated_inputs_work(small_glnet, hw):
    """Any size: output side ceil(side / stride) at strides 4, 8, 16, 32."""
    outs = forward(small_glnet, torch.randn(1, 3, *hw))
    expected = [tuple(-(-s // stride) for s in hw) for stride in (4, 8, 16, 32)]
    assert [tuple(o.shape[2:]) for o in outs] == expected
    assert all(o.isfinite().all() for o in outs)


def test_conformer_sizes_work_or_ask_for_padding(small_conformer):
    outs = forward(small_conformer, torch.randn(1, 3, 16, 512))
    assert [tuple(o.shape[2:]) for o in outs] == [(4, 128), (2, 64), (1, 32), (1, 16)]
    with pytest.raises(ValueError, match=r'cannot process 7x7 inputs.*Pad the images to '
                       r'multiples of 16 \(e\.g\. pad_size_divisor=32'):
        forward(small_conformer, torch.randn(1, 3, 7, 7))


@pytest.mark.parametrize('model_name', ['glnet', 'conformer'])
def test_empty_batch_gives_empty_outputs(small_glnet, small_conformer, model_name):
    model = dict(glnet=small_glnet, conformer=small_conformer)[model_name]
    outs = forward(model, torch.randn(0, 3, 64, 64))
    assert [o.shape[0] for o in outs] == [0] * 4
    assert [o.shape[1] for o in outs] == list(model.out_channels)


@pytest.mark.parametrize('model_name', ['glnet', 'conformer'])
def test_channels_last_input_gives_the_same_result(small_glnet, small_conformer, model_name):
    model = dict(glnet=small_glnet, conformer=small_conformer)[model_name]
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(forward(model, x), forward(model, x.to(memory_format=torch.channels_last))):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('model_name', ['glnet', 'conformer'])
def test_nan_in_one_image_stays_in_that_image(small_glnet, small_conformer, model_name):
    """NaN input is not looked for (a pass over every input), and it gives NaN outputs for
    that image only: the other images of the batch are unchanged (inference mode)."""
    model = dict(glnet=small_glnet, conformer=small_conformer)[model_name]
    x = torch.randn(2, 3, 64, 64)
    poisoned = x.clone()
    poisoned[0, 0, 5, 5] = float('nan')
    clean, outs = forward(model, x), forward(model, poisoned)
    for a, b in zip(clean, outs):
        assert b[0].isnan().any()
        torch.testing.assert_close(b[1], a[1])


def test_drop_path_close_to_one_stays_finite_in_training():
    model = GLNet(LAYOUTS['4g-like'], drop_path_rate=0.99).train()
    torch.manual_seed(0)
    outs = model(torch.randn(2, 3, 64, 64))
    assert all(o.isfinite().all() for o in outs)


# ---------------------------------------------------------------------------------------------
# Checkpoint files (init_cfg=dict(type='Pretrained')): the safe loader's messages


def _checkpoint_files(tmp_path):
    torch.save({'model': {}}, tmp_path / 'full.pth')
    data = (tmp_path / 'full.pth').read_bytes()
    (tmp_path / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'empty.pth').write_bytes(b'')
    (tmp_path / 'page.pth').write_text('<html><body>404 Not Found</body></html>')
    (tmp_path / 'folder.pth').mkdir()


@pytest.mark.parametrize('name,error,message', [
    ('empty.pth', RuntimeError, r'empty\.pth: is empty \(0 bytes\).*download or copy it again'),
    ('page.pth', RuntimeError, r"page\.pth: not a PyTorch or safetensors checkpoint .*b'<html>"
     r".*Download it again"),
    ('truncated.pth', RuntimeError, r'truncated\.pth: truncated or corrupt checkpoint'),
    ('folder.pth', RuntimeError, r'folder\.pth: is a directory'),
    ('missing.pth', FileNotFoundError, r"missing\.pth' does not exist\. Download the released "
     'weights'),
])
def test_unusable_checkpoint_files_are_refused_naming_the_file(tmp_path, name, error, message):
    _checkpoint_files(tmp_path)
    model = GLNet(LAYOUTS['4g-like'],
                  init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / name)))
    with pytest.raises(error, match=message):
        model.init_weights()
