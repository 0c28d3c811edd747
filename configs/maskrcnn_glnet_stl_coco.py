# Mask R-CNN + FPN with a GLNet-STL backbone, COCO, 1x schedule. Drop path 0.2 as mmdet uses
# for Swin-T, whose layout STL copies.
# Why these values: docs/detection.md#recipes.
_base_ = './maskrcnn_glnet_4g_coco.py'

model = dict(
    backbone=dict(
        arch='stl',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/glnet_stl.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
