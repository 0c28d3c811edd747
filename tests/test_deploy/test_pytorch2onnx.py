"""tools/deployment/pytorch2onnx.py on a small GLNet: export, verification, checkpoint, errors."""
import os.path as osp
import runpy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from glmix_mm.compat import has_torch
from glmix_mm.deploy import onnx_export
from glmix_mm.models import GLNet
from helpers import ROOT

pytest.importorskip('onnx', reason='onnx is not installed (pip install -e .[deploy])')
pytest.importorskip('onnxruntime', reason='onnxruntime is not installed (pip install -e .[deploy])')

pytorch2onnx = SimpleNamespace(**runpy.run_path(osp.join(ROOT, 'tools/deployment/pytorch2onnx.py')))

SMALL_4G = dict(GLNet.arch_zoo['4g'], depths=[1, 1, 1, 1], embed_dims=[16, 32, 64, 128],
                head_dim=16)
SHAPES = ['--shape', '1x3x96x128', '--verify-shapes', '1x3x96x128', '2x3x70x110']


@pytest.fixture
def small_config(tmp_path):
    """A detector-like config whose model.backbone is a small GLNet-4G layout."""
    path = tmp_path / 'small_glnet.py'
    path.write_text(f'model = dict(backbone=dict(type="GLNet", arch={SMALL_4G!r}, '
                    'out_indices=(1, 3), init_cfg=dict(type="Pretrained", '
                    'checkpoint="checkpoints/not_there.pth")))\n')
    return str(path)


def test_config_backbone_with_checkpoint(tmp_path, small_config, capsys):
    torch.manual_seed(1)
    trained = GLNet(SMALL_4G, out_indices=(1, 3)).eval()
    checkpoint = str(tmp_path / 'detector.pth')
    # A whole-model checkpoint: the tool keeps the backbone. part, as init_cfg does.
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in trained.state_dict().items()}},
               checkpoint)
    out = str(tmp_path / 'backbone.onnx')
    rc = pytorch2onnx.main(['--config', small_config, '--checkpoint', checkpoint, '--out', out]
                           + SHAPES)
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert 'all sizes within tolerance' in printed and '2x3x70x110' in printed
    # The file holds the checkpoint's weights, not the random ones.
    x = onnx_export.random_input((1, 3, 80, 96), seed=5)
    onnx_outs = onnx_export.onnx_session(out).run(None, {'input': x.numpy()})
    with torch.no_grad():
        expected = trained(x)
    assert len(onnx_outs) == 2
    for got, ref in zip(onnx_outs, expected):
        assert onnx_export.relative_error(got, ref.numpy()) < 1e-4


@pytest.mark.skipif(not has_torch(onnx_export.TORCH_EXPORT_MIN),
                    reason=f'torch.export needs PyTorch >= {onnx_export.TORCH_EXPORT_MIN}')
def test_torch_export_mode_saves_a_program(tmp_path, small_config, capsys):
    out = str(tmp_path / 'backbone.pt2')
    rc = pytorch2onnx.main(['--config', small_config, '--torch-export', '--out', out] + SHAPES)
    assert rc == 0, capsys.readouterr().out
    program = torch.export.load(out)
    assert len(program.module()(torch.zeros(2, 3, 70, 90))) == 2


def test_exceeding_the_tolerance_exits_1(tmp_path, small_config, capsys):
    rc = pytorch2onnx.main(['--config', small_config, '--out', str(tmp_path / 'b.onnx'),
                            '--tolerance', '0'] + SHAPES)
    assert rc == 1
    assert 'sizes failed' in capsys.readouterr().out


@pytest.mark.parametrize('argv, message', [
    (['--arch', '5g'], "unknown --arch '5g'"),
    (['--arch', 'conformer-s32', '--mhsa-window', '7'], 'GLNet option'),
    (['--arch', 'conformer-ti', '--verify-shapes', '1x3x200x328'], 'multiples of 4'),
    (['--arch', '4g', '--shape', '224x224'], 'NxCxHxW'),
    (['--arch', '4g', '--checkpoint', 'nowhere.pth'], "checkpoint 'nowhere.pth' does not"),
    (['--config', 'configs/nowhere.py'], "config 'configs/nowhere.py' does not exist"),
])
def test_user_mistakes_get_one_line(capsys, argv, message):
    assert pytorch2onnx.main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith('error: ') and message in last


def test_checkpoint_of_another_model_is_refused(tmp_path, small_config, capsys):
    checkpoint = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(1)}}, checkpoint)
    assert pytorch2onnx.main(['--config', small_config, '--checkpoint', checkpoint]) == 1
    assert 'does not fit' in capsys.readouterr().err


def test_arch_names():
    assert pytorch2onnx.backbone_cfg_from_arch('glnet-4g', 14) == dict(
        type='glmix_mm.GLNet', arch='4g', mhsa_window=14)
    assert pytorch2onnx.backbone_cfg_from_arch('conformer-s32', None)['patch_size'] == 32
    assert np.all([s in pytorch2onnx.DEFAULT_VERIFY for s in ('1x3x200x328', '1x3x480x640')])
