"""ImageNet-1k training with the authors' recipe (configs/glnet_*_in1k.py): the recipe's values
as the configs build them, checked against upstream's rules (timm's where timm is installed),
and a few iterations of the whole recipe through tools/train.py and tools/test.py on generated
ImageNet-style data."""
import glob
import json
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
from helpers import ROOT, run_tool_process
from mmengine.config import Config
from mmengine.registry import init_default_scope

pytestmark = pytest.mark.slow  # tools in subprocesses, training runs

ARCHS = {'stl': 0.1, '4g': 0.15, '9g': 0.3, '16g': 0.4}  # drop path (upstream README)
BGR_MEAN = [103.53, 116.28, 123.675]
BGR_STD = [57.375, 57.12, 58.395]


def config(arch: str) -> Config:
    return Config.fromfile(osp.join(ROOT, f'configs/glnet_{arch}_in1k.py'))


def plain(value):
    """``value`` without the ``_scope_`` keys that MMEngine adds to the entries of base files."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def transform(pipeline: list, kind: str) -> dict:
    found = [t for t in pipeline if t['type'] == kind]
    assert len(found) == 1, (kind, [t['type'] for t in pipeline])
    return plain(found[0])


def ema_hook(cfg: Config) -> dict:
    found = [h for h in cfg.custom_hooks if h['type'] == 'EMAHook']
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize('arch', list(ARCHS))
def test_config_has_the_upstream_recipe(arch):
    cfg = config(arch)
    assert cfg.model.backbone.arch == arch
    assert cfg.model.backbone.drop_path_rate == ARCHS[arch]
    assert cfg.load_from is None  # from scratch; tools/test.py loads the checkpoint it is given
    # Optimizer: AdamW, lr 2e-3 at a global batch of 2048, weight decay 0.05, clipping 5.0, AMP.
    optim = cfg.optim_wrapper
    assert optim.type == 'AmpOptimWrapper' and set(optim) == {
        'type', 'optimizer', 'clip_grad', 'paramwise_cfg'}  # type=OptimWrapper works on CPUs
    assert plain(optim.optimizer) == dict(type='AdamW', lr=2e-3, weight_decay=0.05, eps=1e-8,
                                   betas=(0.9, 0.999))
    assert plain(optim.clip_grad) == dict(max_norm=5.0)
    assert plain(cfg.auto_scale_lr) == dict(base_batch_size=2048)
    assert cfg.train_dataloader.batch_size * 16 == 2048 and cfg.train_dataloader.drop_last
    # Schedule: 300 epochs, per-iteration linear warm-up over 5 epochs from (almost) 0, then
    # cosine to 1e-5.
    assert plain(cfg.train_cfg) == dict(by_epoch=True, max_epochs=300, val_interval=1)
    warmup, cosine = plain(cfg.param_scheduler)
    assert warmup == dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=5,
                          convert_to_iter_based=True)
    assert cosine == dict(type='CosineAnnealingLR', T_max=295, eta_min=1e-5, by_epoch=True,
                          begin=5, end=300, convert_to_iter_based=True)
    # EMA with decay 0.9999 of weights and BatchNorm statistics, next to the common hooks.
    assert plain(ema_hook(cfg)) == dict(type='EMAHook', momentum=1e-4, update_buffers=True,
                                 priority='ABOVE_NORMAL')
    assert {'RNGStateHook', 'CheckpointFitHook', 'ResumableTrainingHook'} <= {
        h['type'] for h in cfg.custom_hooks}
    # Repeated augmentation, Mixup 0.8 / CutMix 1.0 switching at 0.5, label smoothing 0.1.
    assert plain(cfg.train_dataloader.sampler) == dict(type='RepeatAugSampler', shuffle=True,
                                                num_repeats=3)
    assert plain(cfg.model.train_cfg) == dict(
        augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)],
        probs=[0.5, 0.5])
    assert plain(cfg.model.head.loss) == dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                                       mode='original')
    assert plain(cfg.model.head.init_cfg) == dict(type='TruncNormal', layer='Linear', std=.02,
                                           bias=0.)
    # Augmentation: bicubic random resized crop, flip, rand-m9-mstd0.5-inc1, random erasing
    # 0.25 (pixel mode), no colour jitter.
    train = cfg.train_dataloader.dataset.pipeline
    assert [t['type'] for t in train] == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'RandAugment', 'RandomErasing',
        'PackInputs']
    assert transform(train, 'RandomResizedCrop') == dict(
        type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0),
        aspect_ratio_range=(3 / 4, 4 / 3), max_attempts=10, backend='pillow',
        interpolation='bicubic')
    assert transform(train, 'RandomFlip') == dict(type='RandomFlip', prob=0.5,
                                                  direction='horizontal')
    assert transform(train, 'RandAugment') == dict(
        type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
        magnitude_level=9, magnitude_std=0.5,
        hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic'))
    assert transform(train, 'RandomErasing') == dict(
        type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
        max_area_ratio=1 / 3, aspect_range=(0.3, 1 / 0.3), fill_color=BGR_MEAN,
        fill_std=BGR_STD)
    assert cfg.data_preprocessor.mean[::-1] == BGR_MEAN
    assert cfg.data_preprocessor.std[::-1] == BGR_STD
    # Evaluation: short side 256 bicubic, 224 centre crop.
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert [t['type'] for t in loader.dataset.pipeline] == [
            'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs']
        assert transform(loader.dataset.pipeline, 'ResizeEdge') == dict(
            type='ResizeEdge', scale=256, edge='short', backend='pillow',
            interpolation='bicubic')
        assert transform(loader.dataset.pipeline, 'CenterCrop')['crop_size'] == 224
    assert plain(cfg.randomness) == dict(seed=0, diff_rank_seed=True, deterministic=False)
    assert cfg.model_wrapper_cfg.broadcast_buffers


def test_no_weight_decay_where_upstream_has_none():
    """ConvNextV2/optim_factory.py of upstream: no decay for 1-D parameters and for names
    ending in .bias, .gamma or .beta; everything else (slot scales, 0-d, included) decays."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS

    import glmix_mm  # noqa: F401
    from glmix_mm.models.glnet import GLNet
    cfg = config('16g')
    # The 16G layout (layer scales, slot scales, BatchNorms, LayerNorms), small.
    cfg.model.backbone.arch = dict(GLNet.arch_zoo['16g'], depths=[1, 1, 2, 1],
                                   embed_dims=[32, 64, 128, 256])
    cfg.model.head.in_channels = 256
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='OptimWrapper'))
    decay = {}
    for group in wrapper.optimizer.param_groups:
        assert group['lr'] == 2e-3
        for p in group['params']:
            decay[id(p)] = group['weight_decay']
    kinds = set()
    for name, p in model.named_parameters():
        exempt = p.ndim == 1 or name.endswith(('.bias', '.gamma', '.beta'))
        assert decay[id(p)] == (0. if exempt else 0.05), name
        kinds.add(name.rsplit('.', 1)[-1] + ('' if exempt else '+decay'))
    assert {'gamma', 'in_proj_bias', 'bias', 'weight', 'weight+decay',
            'slot_scale+decay'} <= kinds


def test_ema_momentum_is_one_minus_the_upstream_decay():
    """Upstream: timm ModelEma(decay=0.9999) over the whole state dict after every step."""
    timm_utils = pytest.importorskip('timm.utils')
    from mmengine.model import ExponentialMovingAverage
    hook = ema_hook(config('4g'))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 2))

    def step():  # weights and BatchNorm statistics move
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model.train()(torch.randn(2, 3, 8, 8) * 3 + 1)

    step()
    ours = ExponentialMovingAverage(model, momentum=hook['momentum'],
                                    update_buffers=hook['update_buffers'])
    ours.update_parameters(model)  # the first update copies the model, as ModelEma's creation
    theirs = timm_utils.ModelEma(model, decay=0.9999)
    for _ in range(3):
        step()
        ours.update_parameters(model)
        theirs.update(model)
    own = ours.module.state_dict()
    for key, value in theirs.ema.state_dict().items():
        if value.dtype.is_floating_point:
            torch.testing.assert_close(own[key], value, msg=key)
            assert not torch.allclose(value, model.state_dict()[key]), key


def test_randaugment_and_erasing_are_timms_with_the_upstream_arguments():
    """timm's create_transform with upstream's arguments (datasets.py, configs/main_cx2.yaml):
    no colour jitter next to RandAugment, and the same ops and settings as our pipeline."""
    timm_data = pytest.importorskip('timm.data')
    from PIL import Image
    upstream = timm_data.create_transform(
        224, is_training=True, color_jitter=0.4, auto_augment='rand-m9-mstd0.5-inc1',
        interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1)
    names = [type(t).__name__ for t in upstream.transforms]
    assert 'ColorJitter' not in names
    assert names[:3] == ['RandomResizedCropAndInterpolation', 'RandomHorizontalFlip',
                         'RandAugment']
    crop, flip, rand_aug = upstream.transforms[:3]
    erasing = upstream.transforms[names.index('RandomErasing')]
    cfg = config('4g')
    train = cfg.train_dataloader.dataset.pipeline
    ours_crop = transform(train, 'RandomResizedCrop')
    assert crop.scale == ours_crop['crop_ratio_range']
    assert crop.ratio == pytest.approx(ours_crop['aspect_ratio_range'])
    assert flip.p == transform(train, 'RandomFlip')['prob']
    # RandAugment: 2 of 15 increasing-severity ops, each with p 0.5, magnitude 9 +- N(0, 0.5).
    same_op = {
        'AutoContrast': 'AutoContrast', 'Equalize': 'Equalize', 'Invert': 'Invert',
        'Rotate': 'Rotate', 'PosterizeIncreasing': 'Posterize',
        'SolarizeIncreasing': 'Solarize', 'SolarizeAdd': 'SolarizeAdd',
        'ColorIncreasing': 'ColorTransform', 'ContrastIncreasing': 'Contrast',
        'BrightnessIncreasing': 'Brightness', 'SharpnessIncreasing': 'Sharpness',
        'ShearX': 'Shear', 'ShearY': 'Shear', 'TranslateXRel': 'Translate',
        'TranslateYRel': 'Translate'}
    init_default_scope('mmpretrain')
    from mmpretrain.registry import TRANSFORMS
    ours = TRANSFORMS.build(transform(train, 'RandAugment'))
    assert rand_aug.num_layers == ours.num_policies == 2
    assert [same_op[op.name] for op in rand_aug.ops] == [p['type'] for p in ours.policies]
    fill = tuple(reversed(transform(train, 'RandAugment')['hparams']['pad_val']))  # RGB
    for op, t in zip(rand_aug.ops, ours.transforms):
        assert op.prob == t.prob == 0.5
        assert op.kwargs['fillcolor'] == fill and op.kwargs['resample'] == Image.BICUBIC
        if t.magnitude_range is not None:
            assert op.magnitude == t.magnitude_level == 9
            assert op.magnitude_std == t.magnitude_std == 0.5
            assert (op.magnitude_max or 10) == t.total_level == 10
        if hasattr(t, 'pad_val'):
            assert tuple(reversed(t.pad_val)) == fill and t.interpolation == 'bicubic'
    # Random erasing: p 0.25, one box, per-pixel normal noise, area 0.02-1/3, aspect 0.3-1/0.3.
    ours_erasing = transform(train, 'RandomErasing')
    assert erasing.probability == ours_erasing['erase_prob']
    assert erasing.per_pixel and ours_erasing['mode'] == 'rand' and ours_erasing['fill_std']
    assert erasing.min_count == erasing.max_count == 1
    assert (erasing.min_area, erasing.max_area) == (ours_erasing['min_area_ratio'],
                                                    ours_erasing['max_area_ratio'])
    assert erasing.log_aspect_ratio == pytest.approx(
        tuple(math.log(a) for a in ours_erasing['aspect_range']))


def tiny_config(demo_data, tmp_path) -> str:
    """configs/glnet_stl_in1k.py, every part of the recipe on, at 64 x 64 pixels on the 3-class
    generated ImageNet-style folders: 6 training images, batches of 4, one iteration an epoch."""
    cfg = config('stl')

    def shrink(pipeline):
        pipeline = [dict(t) for t in pipeline]
        for t in pipeline:
            if t['type'] == 'RandomResizedCrop':
                t['scale'] = 64
            elif t['type'] == 'ResizeEdge':
                t['scale'] = 73
            elif t['type'] == 'CenterCrop':
                t['crop_size'] = 64
        return pipeline

    for name, split in (('train_dataloader', 'train'), ('val_dataloader', 'val'),
                        ('test_dataloader', 'val')):
        loader = cfg[name]
        loader.dataset = dict(type='CustomDataset', data_root=f'{demo_data}/imagenet/{split}',
                              pipeline=shrink(loader.dataset.pipeline))
        loader.update(batch_size=4 if split == 'train' else 3, num_workers=0)
    cfg.model.head.update(num_classes=3, topk=(1, ))
    cfg.data_preprocessor.num_classes = 3
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    cfg.train_cfg.update(max_epochs=3, val_interval=3)
    cfg.default_hooks.checkpoint.interval = 3
    cfg.default_hooks.logger.interval = 1
    path = str(tmp_path / 'glnet_stl_in1k_tiny.py')
    cfg.dump(path)
    return path


def test_recipe_trains_and_evaluates_on_tiny_imagenet_folders(demo_data, tmp_path):
    """From scratch, in float32 (OptimWrapper: AmpOptimWrapper needs a GPU, the override the
    config's header gives for the CPU)."""
    path = tiny_config(demo_data, tmp_path)
    work = str(tmp_path / 'work')
    train = run_tool_process('tools/train.py', path, '--work-dir', work, '--cfg-options',
                             'optim_wrapper.type=OptimWrapper')
    assert train.returncode == 0, train.stderr[-3000:]
    logs = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    assert len(logs) == 1
    with open(logs[0]) as f:
        entries = [json.loads(line) for line in f]
    steps = [e for e in entries if 'loss' in e]
    assert [e['iter'] for e in steps] == [1, 2, 3]  # one iteration an epoch, 3 epochs
    assert all(math.isfinite(e['loss']) and e['loss'] > 0 for e in steps)
    assert all(math.isfinite(e['grad_norm']) for e in steps)  # clipping computes the norm
    # Warm-up from 2e-3 * 1e-6 over 5 epochs of one iteration (MMEngine's LinearLR reaches 2e-3
    # at the last of them: lr 2e-3 * i / 4 at iteration i, upstream 2e-3 * i / 5).
    assert [e['lr'] for e in steps] == pytest.approx([2e-9, 2e-3 / 4, 2e-3 / 2], rel=1e-4)
    assert any('accuracy/top1' in e for e in entries)

    ckpt = torch.load(osp.join(work, 'epoch_3.pth'), map_location='cpu', weights_only=False)
    ema = ckpt['ema_state_dict']
    assert int(ema['steps']) == 3  # one EMA update per iteration
    assert {k[len('module.'):] for k in ema if k.startswith('module.')} == set(ckpt['state_dict'])
    # The EMA weights are the checkpoint's weights; the raw ones are kept under module.*.
    key = 'head.fc.weight'
    assert not torch.equal(ckpt['state_dict'][key], ema[f'module.{key}'])
    assert 'backbone.norm3.running_mean' in ckpt['state_dict']  # BN statistics averaged too

    test = run_tool_process('tools/test.py', path, osp.join(work, 'epoch_3.pth'), '--work-dir',
                            str(tmp_path / 'test'))
    assert test.returncode == 0, test.stderr[-3000:]
    assert "'accuracy/top1'" in test.stdout
    assert 'Start testing on EMA model' in test.stdout + test.stderr
