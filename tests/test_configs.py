"""Every config in configs/ loads, names its pretrained weights and builds its model."""
import glob
import importlib
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))


def test_there_are_configs():
    names = {osp.basename(c) for c in CONFIGS}
    for arch in ('stl', '4g', '9g', '16g'):
        assert {f'maskrcnn_glnet_{arch}_coco.py', f'upernet_glnet_{arch}_ade20k.py',
                f'glnet_{arch}_in1k.py'} <= names
    for arch in ('ti', 's16', 's32', 'b'):
        assert {f'maskrcnn_conformer_{arch}_coco.py', f'upernet_conformer_{arch}_ade20k.py'
                } <= names


def test_windowed_variant_changes_only_the_attention_window():
    base = Config.fromfile(osp.join(ROOT, 'configs/maskrcnn_glnet_4g_coco.py'))
    win = Config.fromfile(osp.join(ROOT, 'configs/maskrcnn_glnet_4g_coco_win.py'))
    assert base.model.backbone.get('mhsa_window') is None
    assert win.model.backbone.pop('mhsa_window') == 14
    assert win.to_dict() == base.to_dict()


def decoder_in_channels(cfg: Config) -> list:
    """What the first module after the backbone expects from it."""
    if cfg.model.get('neck') and 'in_channels' in cfg.model.neck:
        return list(cfg.model.neck.in_channels)
    if cfg.model.get('decode_head'):
        return list(cfg.model.decode_head.in_channels)
    return [cfg.model.head.in_channels]


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(c, ROOT) for c in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['glmix_mm']
    backbone = cfg.model.backbone
    if '/demo/' in path:
        assert backbone.init_cfg is None  # trained from scratch on the demo data
    elif cfg.default_scope == 'mmpretrain' and 'tklb' in path:  # evaluation only
        assert cfg.load_from.startswith('checkpoints/')  # converted with glnet2mm.py --cls
    elif cfg.default_scope == 'mmpretrain':
        assert cfg.load_from is None  # trains from scratch; tools/test.py takes the checkpoint
    else:
        assert backbone.init_cfg.type == 'Pretrained'
        assert backbone.init_cfg.checkpoint.startswith('checkpoints/')
    init_default_scope(cfg.default_scope)
    registry = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    model = registry.build(cfg.model)
    assert decoder_in_channels(cfg) == list(model.backbone.out_channels)


def test_stock_mmdet_config_with_glnet_trains_one_step():
    """The README's plug-in example: mmdet's own Cascade Mask R-CNN with GLNet swapped in."""
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import InstanceData
    cfg = Config.fromfile(osp.join(ROOT, 'configs/cascade_maskrcnn_glnet_4g_coco.py'))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    sample = DetDataSample(metainfo=dict(img_shape=(96, 128), ori_shape=(96, 128),
                                         scale_factor=(1., 1.)))
    masks = torch.zeros(1, 96, 128, dtype=torch.uint8)
    masks[0, 20:60, 30:90] = 1
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[30., 20., 90., 60.]]), labels=torch.tensor([3]),
        masks=BitmapMasks(masks.numpy(), 96, 128))
    data = dict(inputs=[torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8)],
                data_samples=[sample])
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = model.backbone.stages[0].blocks[0].mlp[0].weight.clone()
    losses = model.train_step(data, optim_wrapper)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    assert not torch.equal(before, model.backbone.stages[0].blocks[0].mlp[0].weight)
