"""One exported graph serves every size: ONNX (both exporters) in ONNX Runtime and
torch.export, for GLNet and Conformer, against the eager model at sizes other than the export
size (non-multiples of 32, larger than the export size, another batch).

The GLNet models have the layouts of ``stl`` and ``4g`` (every block kind, both patch
embeddings, zero padding to whole patches, windowed attention) with fewer and narrower blocks,
to keep the exports fast (the real archs: docs/deployment.md, measured with
tools/deployment/pytorch2onnx.py).
"""
import pytest
import torch
import torch.nn as nn

from glmix_mm.compat import has_torch
from glmix_mm.deploy import onnx_export
from glmix_mm.models import Conformer, GLNet

pytest.importorskip('onnx', reason='onnx is not installed (pip install -e .[deploy])')
pytest.importorskip('onnxruntime', reason='onnxruntime is not installed (pip install -e .[deploy])')

needs_torch_export = pytest.mark.skipif(
    not has_torch(onnx_export.TORCH_EXPORT_MIN),
    reason=f'dynamic-shape torch.export needs PyTorch >= {onnx_export.TORCH_EXPORT_MIN}')

EXPORT_SHAPE = (1, 3, 128, 160)
VERIFY_SHAPES = [(2, 3, 96, 128), (1, 3, 150, 210), (1, 3, 256, 288)]
TOLERANCE = 1e-4


def small_glnet(layout: str, mhsa_window=None) -> GLNet:
    arch = dict(GLNet.arch_zoo[layout], depths=[1, 1, 2, 1], embed_dims=[32, 64, 128, 256])
    torch.manual_seed(0)
    return GLNet(arch, mhsa_window=mhsa_window).eval()


def small_conformer(patch_size: int) -> Conformer:
    torch.manual_seed(0)
    return Conformer(arch=dict(embed_dims=64, depths=6, num_heads=2, channel_ratio=1),
                     patch_size=patch_size).eval()


def assert_exact(checks):
    assert [c.shape for c in checks]
    for check in checks:
        assert check.failure is None, check
        assert check.passes(TOLERANCE), onnx_export.format_checks(checks, TOLERANCE)


@pytest.fixture(scope='module')
def exported_programs():
    """torch.export programs, shared by the torch.export and the dynamo ONNX tests."""
    cache = {}

    def get(name, build):
        if name not in cache:
            model = build()
            example = onnx_export.random_input(EXPORT_SHAPE)
            cache[name] = model, onnx_export.export_program(model, example)
        return cache[name]

    return get


MODELS = {
    'stl-small': lambda: small_glnet('stl'),
    '4g-small': lambda: small_glnet('4g'),
    '4g-small-win7': lambda: small_glnet('4g', mhsa_window=7),
}


@pytest.mark.parametrize('name', ['stl-small', '4g-small', '4g-small-win7'])
def test_torchscript_onnx_exact_at_other_sizes(tmp_path, name):
    model = MODELS[name]()
    path = str(tmp_path / 'model.onnx')
    names = onnx_export.export_onnx(model, onnx_export.random_input(EXPORT_SHAPE), path,
                                    'torchscript', opset=14)  # the first with attention
    assert names == ['out0', 'out1', 'out2', 'out3']
    assert_exact(onnx_export.verify_onnx(model, path, VERIFY_SHAPES))


@needs_torch_export
def test_torch_export_and_dynamo_onnx_exact_at_other_sizes(tmp_path, exported_programs):
    model, program = exported_programs('4g-small', MODELS['4g-small'])
    assert_exact(onnx_export.verify_program(program, model, VERIFY_SHAPES + [(3, 3, 64, 64)]))
    path = str(tmp_path / 'model.onnx')
    onnx_export.export_onnx(model, onnx_export.random_input(EXPORT_SHAPE), path, 'dynamo',
                            program=program)
    assert_exact(onnx_export.verify_onnx(model, path, VERIFY_SHAPES))


@needs_torch_export
def test_torch_export_windowed_attention_exact_at_other_sizes(exported_programs):
    """Windows padded and masked at every size (7x7 windows on maps of 8x10 to 16x18)."""
    model, program = exported_programs('4g-small-win7', MODELS['4g-small-win7'])
    assert_exact(onnx_export.verify_program(program, model, VERIFY_SHAPES))


@needs_torch_export
def test_torch_export_padding_to_whole_patches(exported_programs):
    """GLNet-STL pads to whole patches: guards the solver cannot prove become runtime asserts."""
    model, program = exported_programs('stl-small', MODELS['stl-small'])
    assert_exact(onnx_export.verify_program(program, model, VERIFY_SHAPES))


@pytest.mark.parametrize('patch_size', [16, 32])
def test_conformer_torchscript_onnx_exact_at_other_sizes(tmp_path, patch_size):
    model = small_conformer(patch_size)
    path = str(tmp_path / 'model.onnx')
    onnx_export.export_onnx(model, onnx_export.random_input(EXPORT_SHAPE), path)
    assert_exact(onnx_export.verify_onnx(model, path, [(2, 3, 96, 128), (1, 3, 256, 288)]))


@needs_torch_export
def test_conformer_torch_export(exported_programs):
    model, program = exported_programs('conformer16', lambda: small_conformer(16))
    # Multiples of the patch size, not of 32.
    shapes = [(2, 3, 96, 128), (1, 3, 160, 208), (1, 3, 256, 288)]
    assert_exact(onnx_export.verify_program(program, model, shapes))


class BakedWidth(nn.Module):
    """Scales by the input width as a Python number, which tracing records as a constant."""

    def forward(self, x):
        return (x * float(x.shape[-1]), )


def test_verification_catches_a_graph_fixed_to_the_export_size(tmp_path):
    model = BakedWidth()
    path = str(tmp_path / 'baked.onnx')
    onnx_export.export_onnx(model, onnx_export.random_input((1, 3, 64, 64)), path)
    checks = onnx_export.verify_onnx(model, path, [(1, 3, 64, 64), (1, 3, 64, 96)])
    assert checks[0].passes(TOLERANCE)
    assert not checks[1].passes(TOLERANCE)
    assert checks[1].worst == pytest.approx(1 / 3, rel=1e-3)  # x * 64 instead of x * 96
    assert 'EXCEEDS' in onnx_export.format_checks(checks, TOLERANCE)


def test_relative_error():
    ref = torch.tensor([[1., -2.], [4., 0.]]).numpy()
    assert onnx_export.relative_error(ref, ref) == 0
    assert onnx_export.relative_error(ref + 0.04, ref) == pytest.approx(0.01)
    assert onnx_export.relative_error(ref[:1], ref) == float('inf')
    assert onnx_export.relative_error(ref * float('nan'), ref) == float('inf')


def test_dynamic_specs():
    axes = onnx_export.dynamic_axes(['out0', 'out1'])
    assert axes['input'] == {0: 'batch', 2: 'height', 3: 'width'}
    assert set(axes) == {'input', 'out0', 'out1'} and axes['out1'][0] == 'batch'
    assert onnx_export.size_multiple(small_glnet('4g')) == 1
    assert onnx_export.size_multiple(small_conformer(32)) == 32
    assert onnx_export.tracing_example(torch.zeros(1, 3, 8, 8)).shape[0] == 2
    assert onnx_export.tracing_example(torch.zeros(3, 3, 8, 8)).shape[0] == 3
    with pytest.raises(ValueError, match='exporter'):
        onnx_export.export_onnx(BakedWidth(), torch.zeros(1, 3, 8, 8), 'x.onnx', 'tflite')
