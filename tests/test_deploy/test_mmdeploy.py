"""MMDeploy 1.3.1 on torch 2.12: the compatibility fixes, and a Mask R-CNN GLNet deployed to ONNX
Runtime with MMDeploy's dynamic instance-segmentation settings giving PyTorch's detections at the
export size and at two other sizes (tools/deployment/deploy_detector.py)."""
import os.path as osp
import sys
import types

import pytest
import torch

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed (pip install -e .[deploy])')
pytest.importorskip('mmdeploy', reason='MMDeploy is not installed (tools/setup_env.sh installs '
                    'mmdeploy==1.3.1)')

from glmix_mm.deploy import mmdeploy_compat  # noqa: E402
from glmix_mm.deploy.mmdeploy_compat import apply_mmdeploy_compat  # noqa: E402
from helpers import ROOT, load_tool  # noqa: E402


deploy_detector = load_tool('deployment/deploy_detector.py')


def test_compat_is_applied_once_and_only_on_request():
    original_export = torch.onnx.export
    first = apply_mmdeploy_compat()
    python_313_fix = sys.version_info >= (3, 13)
    assert apply_mmdeploy_compat() == first and len(first) == 4 + python_313_fix
    import torch.onnx.symbolic_opset9 as opset9
    assert callable(opset9._cast_Long)
    # The export rewriter only lives inside MMDeploy's export context.
    assert torch.onnx.export is original_export
    from mmdeploy.core import FUNCTION_REWRITER
    records = FUNCTION_REWRITER._registry._rewrite_records
    assert len(records['torch.onnx.export']) == 1


def test_rewritten_functions_are_found_and_replaced_without_exec(monkeypatch):
    """Fix 5's functions (used by MMDeploy on Python >= 3.13), checked on every Python: a
    method of a class and a module function by dotted path, set and removed."""
    from mmdet.models.roi_heads.bbox_heads.bbox_head import BBoxHead
    method = 'mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.predict_by_feat'
    assert mmdeploy_compat._import_function(method) == (BBoxHead.predict_by_feat, BBoxHead)
    module = types.ModuleType('glmix_scratch_module')
    module.f = lambda: 'origin'
    monkeypatch.setitem(sys.modules, 'glmix_scratch_module', module)
    assert mmdeploy_compat._import_function('glmix_scratch_module.f') == (module.f, None)
    mmdeploy_compat._set_func('glmix_scratch_module.f', lambda: 'rewritten')
    assert mmdeploy_compat._resolve('glmix_scratch_module.f')() == 'rewritten'
    mmdeploy_compat._del_func('glmix_scratch_module.f')
    mmdeploy_compat._del_func('glmix_scratch_module.missing')  # nothing there: no error
    assert not hasattr(module, 'f')
    with pytest.raises(ImportError, match='does not import'):
        mmdeploy_compat._resolve('glmix_no_such_package.f')


@pytest.fixture(scope='module')
def small_detector(tmp_path_factory):
    """The demo Mask R-CNN config with a small GLNet-4G layout, and one demo image."""
    from mmengine.config import Config
    make_demo_data = load_tool('make_demo_data.py')
    out = tmp_path_factory.mktemp('mmdeploy')
    make_demo_data.main(['--out', str(out / 'data'), '--num-train', '1', '--num-val', '1'])
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/maskrcnn_glnet_4g_demo.py'))
    cfg.model.backbone.arch = dict(depths=[1, 1, 2, 1], embed_dims=[32, 64, 128, 256],
                                   mlp_ratios=[3, 3, 3, 3],
                                   mixers=['glmix', 'glmix', 'glmix+mhsa', 'mhsa'],
                                   slot_init='ada_avgpool', patch_embed='overlapped',
                                   cpe_kernel=3, mlp_dwconv=True, layer_scale=None)
    cfg.model.neck.in_channels = [32, 64, 128, 256]
    config = str(out / 'small_maskrcnn.py')
    cfg.dump(config)
    return config, str(out / 'data/coco/val/val_00001.png'), str(out / 'work')


def test_detector_detections_equal_pytorch_at_three_sizes(small_detector, capsys):
    config, image, work_dir = small_detector
    # Sizes that need no padding to the size divisor (32): MMDeploy's graph clips boxes at the
    # padded input's border, PyTorch at the image's (docs/deployment.md).
    rc = deploy_detector.main([config, '--image', image, '--work-dir', work_dir, '--sizes',
                               '160x224', '256x352'])
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if 'PyTorch /' in line]
    assert len(lines) == 3, printed
    assert rc == 0, printed
    for line in lines:  # random weights: the RoI head keeps its 100 best detections
        assert line.split(': ')[1].startswith('100 PyTorch / 100 deployed detections, 100 '
                                              'paired'), line
        assert line.endswith('-> equal')
    assert osp.isfile(osp.join(work_dir, 'end2end.onnx'))


def test_deploy_tool_mistakes_get_one_line(small_detector, capsys):
    config, image, work_dir = small_detector
    assert deploy_detector.main([config, '--image', 'nowhere.png']) == 2
    assert "image 'nowhere.png' does not exist" in capsys.readouterr().err
    assert deploy_detector.main([config, '--image', image, '--sizes', '160']) == 2
    assert 'HEIGHTxWIDTH' in capsys.readouterr().err
