"""tools/visualize_slots.py and tools/image_demo.py write readable PNGs and fail cleanly."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from helpers import ROOT, load_tool, run_tool_process

pytestmark = pytest.mark.slow  # tools in subprocesses, training runs


@pytest.fixture(scope='module')
def image(demo_data):
    return str(demo_data / 'coco' / 'val' / 'val_00001.png')


def test_slot_maps_png_has_one_row_per_block(image, tmp_path):
    out = tmp_path / 'slots.png'
    result = run_tool_process('tools/visualize_slots.py', image, '--arch', 'stl', '--size', '64',
                              '--blocks', '0.1', '2.5', '--num-slots-shown', '3', '--out', str(out),
                              timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(out) as png:
        assert png.size == (240 * (2 + 3), 240 * 2)  # 2.4 inch panels at 100 dpi


def test_slot_maps_from_a_config_and_checkpoint(image, tmp_path):
    from glmix_mm.models import GLNet
    model = GLNet('4g')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()}},
               tmp_path / 'det.pth')
    out = tmp_path / 'slots.png'
    result = run_tool_process('tools/visualize_slots.py', image, '--config',
                              'configs/maskrcnn_glnet_4g_coco.py', '--checkpoint',
                              str(tmp_path / 'det.pth'), '--size', '64', '--out', str(out),
                              timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'blocks: 0.3, 1.3, 2.16' in result.stdout  # last GLMix block of stages 0-2
    with Image.open(out) as png:
        assert png.size == (240 * 6, 240 * 3)


@pytest.mark.parametrize('args,message', [
    (['missing.png'], 'does not exist'),
    (['IMAGE', '--arch', 'stl', '--blocks', '3.0'], 'have no slots'),
    (['IMAGE', '--config', 'configs/maskrcnn_conformer_s32_coco.py'], 'no GLNet backbone'),
])
def test_slot_maps_bad_input_is_a_clear_error(image, tmp_path, args, message):
    args = [image if a == 'IMAGE' else a for a in args]
    result = run_tool_process('tools/visualize_slots.py', *args, '--size', '64', '--out',
                              str(tmp_path / 'x.png'), timeout=600)
    assert result.returncode == 2  # a path, a block or a config to change
    assert message in result.stderr and 'Traceback' not in result.stderr


def random_checkpoint(config: str, path: str) -> None:
    """The config's model with its initial weights, saved with the dataset's classes."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    init_default_scope(cfg.default_scope)
    registry = __import__(f'{cfg.default_scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model)
    meta = dict(classes=cfg.metainfo['classes'], palette=cfg.metainfo['palette'])
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': meta}}, path)


@pytest.mark.parametrize('config', ['configs/demo/maskrcnn_glnet_4g_demo.py',
                                    'configs/demo/upernet_glnet_4g_demo.py'])
def test_image_demo_draws_result_at_image_size(image, tmp_path, config):
    random_checkpoint(config, str(tmp_path / 'model.pth'))
    out = tmp_path / 'result.png'
    result = run_tool_process('tools/image_demo.py', image, config, str(tmp_path / 'model.pth'),
                              '--out', str(out), '--score-thr', '0.0', timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(out) as png, Image.open(image) as src:
        assert png.size == src.size


def test_image_demo_bad_input_is_a_clear_error(image, tmp_path):
    result = run_tool_process('tools/image_demo.py', image,
                              'configs/demo/maskrcnn_glnet_4g_demo.py',
                              str(tmp_path / 'missing.pth'), timeout=600)
    assert result.returncode == 2 and 'does not exist' in result.stderr
    result = run_tool_process('tools/image_demo.py', image, 'configs/glnet_4g_in1k.py', image,
                              timeout=600)
    assert result.returncode == 2 and 'mmdet and mmseg' in result.stderr


def test_k_medoids_are_distinct_and_cover_the_groups():
    k_medoids = load_tool('visualize_slots.py').k_medoids
    # Collapsed slots: identical maps must still give distinct indices.
    same = torch.ones(6, 4, 4)
    assert sorted(set(k_medoids(same, 3))) == sorted(k_medoids(same, 3)) and \
        len(k_medoids(same, 3)) == 3
    # Three well separated groups of maps: one medoid in each.
    torch.manual_seed(0)
    bases = torch.eye(3).repeat_interleave(4, 0)  # 12 maps, groups of 4
    maps = (bases + 0.01 * torch.rand(12, 3)).view(12, 3, 1)
    groups = {i // 4 for i in k_medoids(maps, 3)}
    assert groups == {0, 1, 2}
