"""What a torch version cannot do is refused in one line naming the version it needs, on every
torch (an older one is simulated by the version string that glmix_mm.compat reads)."""
import os.path as osp
import re
import runpy

import pytest
import torch
import torch.nn as nn

from glmix_mm.compat import UnsupportedTorchError
from glmix_mm.deploy import onnx_export
from helpers import ROOT


@pytest.fixture
def torch_2_1(monkeypatch):
    monkeypatch.setattr(torch, '__version__', '2.1.2+cu121')


def test_dynamic_torch_export_needs_its_minimum(torch_2_1):
    model = nn.Conv2d(3, 4, 3)
    message = (f'dynamic-shape torch.export needs PyTorch >= {onnx_export.TORCH_EXPORT_MIN} '
               '(found 2.1.2+cu121)')
    with pytest.raises(UnsupportedTorchError, match=re.escape(message)):
        onnx_export.export_program(model, torch.zeros(1, 3, 64, 64))
    with pytest.raises(UnsupportedTorchError, match='dynamic-shape torch.export'):
        onnx_export.dynamic_shapes(model)


def test_dynamo_onnx_exporter_needs_its_minimum(torch_2_1, tmp_path):
    with pytest.raises(UnsupportedTorchError,
                       match=rf'dynamo ONNX exporter .* needs PyTorch >= '
                       rf'{onnx_export.DYNAMO_ONNX_MIN}'):
        onnx_export.export_onnx(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 64, 64),
                                str(tmp_path / 'm.onnx'), 'dynamo')
    assert not (tmp_path / 'm.onnx').exists()


@pytest.mark.parametrize('option', [['--torch-export'], ['--exporter', 'dynamo']])
def test_tool_refuses_in_one_line(torch_2_1, tmp_path, capsys, option):
    tool = runpy.run_path(osp.join(ROOT, 'tools/deployment/pytorch2onnx.py'))
    argv = ['--arch', 'stl', '--out', str(tmp_path / 'm'), '--shape', '1x3x64x64',
            '--verify-shapes'] + option
    assert tool['main'](argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ')
    assert f'needs PyTorch >= {onnx_export.TORCH_EXPORT_MIN}' in err[0]
