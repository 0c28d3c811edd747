"""A checkpoint that does not fit is refused by tools/test.py, image_demo.py, visualize_slots.py
and a fine-tuning load_from (one error with the key report, exit code 1); --allow-partial loads
what fits; fine-tuning a detector of another class count skips the class-dependent layers (the
hook that does it in a Runner: tests/test_engine/test_checkpoint_fit_hook.py)."""
import os
import os.path as osp

import pytest
import torch
from helpers import DEMO, SMALL_DEMO_DETECTOR, run_tool_process
from mmengine.config import Config
from mmengine.registry import init_default_scope

pytestmark = pytest.mark.slow  # tools in subprocesses, training runs


def demo_model(options: dict):
    """The demo detector with ``options`` merged into its config, initial weights."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(options)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Checkpoints that do not fit the small demo detector (an STL backbone)."""
    from glmix_mm.models import GLNet
    out = tmp_path_factory.mktemp('ckpts')
    paths = dict(
        other_arch=out / 'maskrcnn_4g.pth',  # a detector with another backbone arch
        backbone_only=out / 'glnet_stl.pth',  # a bare backbone file (no backbone. prefix)
        coco_classes=out / 'maskrcnn_stl_80.pth')  # the same detector with 80 classes
    torch.save({'state_dict': demo_model({}).state_dict()}, paths['other_arch'])
    torch.save({'state_dict': GLNet('stl').state_dict()}, paths['backbone_only'])
    coco = demo_model({**SMALL_DEMO_DETECTOR, 'model.roi_head.bbox_head.num_classes': 80,
                       'model.roi_head.mask_head.num_classes': 80})
    torch.save({'state_dict': coco.state_dict()}, paths['coco_classes'])
    return {k: str(v) for k, v in paths.items()}


def test_test_py_refuses_a_checkpoint_that_does_not_fit(demo_options, files, tmp_path):
    result = run_tool_process('tools/test.py', DEMO, files['other_arch'], '--work-dir',
                              str(tmp_path), '--cfg-options', *demo_options)
    assert result.returncode == 1
    assert f'error: The checkpoint {files["other_arch"]} does not fit the model' in result.stderr
    assert 'shape mismatches' in result.stderr and '--allow-partial' in result.stderr
    assert 'Traceback' not in result.stderr and 'coco/bbox_mAP' not in result.stdout


def test_test_py_allow_partial_evaluates_with_a_warning(demo_options, files, tmp_path):
    result = run_tool_process('tools/test.py', DEMO, files['coco_classes'], '--allow-partial',
                              '--work-dir', str(tmp_path), '--cfg-options', *demo_options)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'loading the keys that fit (allow_partial)' in log
    assert 'roi_head.bbox_head.fc_cls.weight (81, 256) vs (4, 256)' in log
    assert "'coco/bbox_mAP'" in result.stdout


def test_fine_tuning_skips_exactly_the_class_dependent_layers(files):
    from glmix_mm.engine import check_fit
    from glmix_mm.checkpoint import loaded_state_dict
    coco = loaded_state_dict(torch.load(files['coco_classes'], weights_only=True))
    # 80 classes -> the demo's 3
    skipped = check_fit(demo_model(SMALL_DEMO_DETECTOR), coco, 'finetune')
    assert sorted(skipped) == [
        f'roi_head.{layer}.{p}' for layer in ('bbox_head.fc_cls', 'bbox_head.fc_reg',
                                              'mask_head.conv_logits') for p in ('bias', 'weight')
    ]


def test_load_from_with_another_backbone_is_refused(demo_options, files, tmp_path):
    result = run_tool_process('tools/train.py', DEMO, '--work-dir', str(tmp_path), '--cfg-options',
                              *demo_options, f'load_from={files["other_arch"]}')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert "does not fit the model's backbone" in result.stderr
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.pth')]


def test_image_demo_refuses_a_checkpoint_that_does_not_fit(demo_data, files, tmp_path):
    image = str(demo_data / 'coco' / 'val' / 'val_00001.png')
    args = ['tools/image_demo.py', image, DEMO, files['backbone_only'], '--out',
            str(tmp_path / 'r.png')]
    result = run_tool_process(*args)
    assert result.returncode == 1 and 'does not fit the model' in result.stderr
    assert 'bare backbone' in result.stderr  # says to load it with init_cfg instead
    assert 'Traceback' not in result.stderr and not osp.exists(tmp_path / 'r.png')


def test_visualize_slots_refuses_and_allows_partial(demo_data, files, tmp_path):
    image = str(demo_data / 'coco' / 'val' / 'val_00001.png')
    args = ['tools/visualize_slots.py', image, '--arch', 'stl', '--checkpoint',
            files['other_arch'], '--size', '64', '--out', str(tmp_path / 's.png')]
    result = run_tool_process(*args)  # a 4G detector's backbone for an STL backbone
    assert result.returncode == 1 and 'does not fit' in result.stderr
    assert 'Traceback' not in result.stderr
    result = run_tool_process(*args, '--allow-partial')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'loading the keys that fit' in (result.stdout + result.stderr).lower()
    assert osp.isfile(tmp_path / 's.png')
