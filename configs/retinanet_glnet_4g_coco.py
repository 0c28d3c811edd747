# RetinaNet + FPN (P3-P7) with a GLNet-4G backbone, COCO, 1x schedule. Optimizer as the GLNet
# author's BiFormer RetinaNet configs (rayleizhu/BiFormer, retinanet.1x.biformer_small.py, which
# follow WaveViT): AdamW lr 1e-4, weight decay 1e-4 on all parameters, drop path 0.2.
# Why these values: docs/detection.md#recipes.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
    './_base_/glnet_det_recipe.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='GLNet',
        arch='4g',
        drop_path_rate=0.2,
        out_norm=dict(type='LN2d', eps=1e-6),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/glnet_4g.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001))
