# RetinaNet + FPN with a GLNet-STL backbone, COCO, 1x schedule.
# Why these values: docs/detection.md#recipes.
_base_ = './retinanet_glnet_4g_coco.py'

model = dict(
    backbone=dict(arch='stl', init_cfg=dict(checkpoint='checkpoints/glnet_stl.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
