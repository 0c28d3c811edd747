"""Every config in configs/ loads, names its pretrained weights and builds its model."""
import glob
import importlib
import os.path as osp

import pytest
from helpers import ROOT, backbone_out_channels, decoder_in_channels
from mmengine.config import Config
from mmengine.registry import init_default_scope

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


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(c, ROOT) for c in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['glmix_mm']
    backbone = cfg.model.backbone
    if path.endswith('_finetune_demo.py'):  # from the demo pretraining (docs/classification.md)
        assert backbone.init_cfg.type == 'Pretrained'
        assert backbone.init_cfg.checkpoint.startswith('checkpoints/demo/')
    elif path.endswith('_pretrain_demo.py'):
        assert backbone.get('init_cfg') is None and cfg.load_from is None
    elif '/demo/' in path:
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
    assert decoder_in_channels(cfg) == backbone_out_channels(model.backbone)


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


def changed_leaves(a, b, prefix: str = '') -> set:
    """Dotted paths of the values that differ between two config trees (dicts compared key by
    key, anything else as a whole; a key on one side only counts as changed)."""
    if isinstance(a, dict) and isinstance(b, dict):
        changed = set()
        for key in set(a) | set(b):
            if key not in a or key not in b:
                changed.add(prefix + key)
            else:
                changed |= changed_leaves(a[key], b[key], f'{prefix}{key}.')
        return changed
    return set() if a == b else {prefix.rstrip('.')}


def config_dict(path: str) -> dict:
    return Config.fromfile(osp.join(ROOT, path)).to_dict()


# What a fine-tuning demo may change of the shipped config (issue 15): the data (with the
# pipelines and evaluators), the image scale, the schedule, the class count and the checkpoint.
DATA_AND_SCHEDULE = {
    'data_root', 'metainfo', 'train_pipeline', 'test_pipeline', 'train_dataloader',
    'val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator', 'train_cfg',
    'param_scheduler', 'default_hooks'}


@pytest.mark.parametrize('demo,shipped,model_changes,top_level', [
    ('configs/demo/maskrcnn_glnet_4g_finetune_demo.py', 'configs/maskrcnn_glnet_4g_coco.py', {
        'backbone.init_cfg.checkpoint', 'roi_head.bbox_head.num_classes',
        'roi_head.mask_head.num_classes',
        # proposal and RoI counts sized to 128-pixel images (the config says why)
        'train_cfg.rpn_proposal.max_per_img', 'train_cfg.rcnn.sampler.num', 'test_cfg.rpn.nms_pre',
        'test_cfg.rpn.max_per_img'}, {'image_scale', 'max_epochs'}),
    ('configs/demo/upernet_glnet_4g_finetune_demo.py', 'configs/upernet_glnet_4g_ade20k.py', {
        'backbone.init_cfg.checkpoint', 'data_preprocessor.size', 'decode_head.num_classes',
        'auxiliary_head.num_classes', 'test_cfg.mode'}, {'crop_size', 'dataset', 'max_iters'}),
])
def test_finetune_demo_keeps_the_shipped_recipe(demo, shipped, model_changes, top_level):
    a, b = config_dict(demo), config_dict(shipped)
    assert changed_leaves(a['model'], b['model']) == model_changes
    assert a['model']['backbone']['init_cfg']['checkpoint'] == (
        'checkpoints/demo/glnet_4g_pretrained.pth')
    assert a['optim_wrapper'] == b['optim_wrapper']  # optimizer, lr, paramwise rule, no clipping
    changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert changed - {'model'} <= DATA_AND_SCHEDULE | top_level
    assert {'train_dataloader', 'param_scheduler', 'train_cfg'} <= changed


def test_pretrain_demo_keeps_the_imagenet_recipe():
    a = config_dict('configs/demo/glnet_4g_pretrain_demo.py')
    b = config_dict('configs/glnet_4g_in1k.py')
    # The model, its drop path and loss (label smoothing) as in the recipe; no Mixup / CutMix.
    assert changed_leaves(a['model'], b['model']) == {'head.num_classes', 'train_cfg'}
    assert a['model']['train_cfg'] is None
    assert changed_leaves(a['optim_wrapper'], b['optim_wrapper']) == {
        'type', 'optimizer.lr'}  # float32 on the CPU; lr for the short run (config says why)
    # The augmentation: the recipe's flips only; crops, RandAugment and random erasing dropped,
    # and one sampler pass over distinct images instead of repeated augmentation (the config
    # says why).
    pipeline_a = a['train_dataloader']['dataset']['pipeline']
    pipeline_b = {t['type']: t for t in b['train_dataloader']['dataset']['pipeline']}
    assert [t['type'] for t in pipeline_a] == ['LoadImageFromFile', 'RandomFlip', 'PackInputs']
    for t in pipeline_a:
        assert changed_leaves(t, pipeline_b[t['type']]) == set()
    assert b['train_dataloader']['sampler']['type'] == 'RepeatAugSampler'
    assert a['train_dataloader']['sampler'] == dict(type='DefaultSampler', shuffle=True)
    ema_a, ema_b = ([h for h in c['custom_hooks'] if h['type'] == 'EMAHook'] for c in (a, b))
    assert len(ema_a) == 1 and changed_leaves(ema_a[0], ema_b[0]) == {'momentum'}
    assert [h['type'] for h in a['custom_hooks']] == [h['type'] for h in b['custom_hooks']]
    # Warm-up then cosine to the same final lr, over the whole run.
    warmup, cosine = a['param_scheduler']
    assert (warmup['type'], cosine['type']) == ('LinearLR', 'CosineAnnealingLR')
    assert cosine['eta_min'] == b['param_scheduler'][1]['eta_min']
    assert cosine['end'] == a['max_epochs'] * a['iters_per_epoch'] == cosine['begin'] + cosine[
        'T_max']
