# Semantic FPN with a GLNet-4G backbone on ADE20K, 80k iterations of 512x512 crops, 32 images
# per iteration (4 per GPU on 8 GPUs). Recipe of the GLNet author's BiFormer Semantic FPN
# (rayleizhu/BiFormer, semantic_segmentation/configs/ade20k/sfpn.biformer_small.py, PVT's
# protocol): AdamW lr 2e-4, weight decay 1e-4, linear warm-up over 1000 iterations from 0.1x,
# cosine annealing to ~0; drop path 0.15.
# Why these values: docs/segmentation.md#configs.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
    './_base_/glnet_common.py',
]

crop_size = {{_base_.crop_size}}
model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=32)),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='GLNet',
        arch='4g',
        drop_path_rate=0.15,
        out_norm=dict(type='LN2d', eps=1e-6),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/glnet_4g.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]),
    decode_head=dict(num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
train_dataloader = dict(batch_size=4)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0002, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=79000, eta_min_ratio=1e-8, by_epoch=False,
         begin=1000, end=80000),
]
