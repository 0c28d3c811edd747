# Mask R-CNN + FPN with a GLNet-9G backbone, COCO, 1x schedule (drop path 0.3 as BiFormer-B).
# Why these values: docs/detection.md#recipes.
_base_ = './maskrcnn_glnet_4g_coco.py'

model = dict(
    backbone=dict(
        arch='9g',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/glnet_9g.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
