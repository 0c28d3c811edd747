# Mask R-CNN + FPN with a GLNet-16G backbone, COCO, 1x schedule. BiFormer has no model this
# size: drop path 0.4 continues the 4G/9G progression (0.2/0.3), as in ImageNet training
# (0.15/0.3/0.4); not tuned.
# Why these values: docs/detection.md#recipes.
_base_ = './maskrcnn_glnet_4g_coco.py'

model = dict(
    backbone=dict(
        arch='16g',
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint='checkpoints/glnet_16g.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
