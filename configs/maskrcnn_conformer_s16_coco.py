# Mask R-CNN + FPN with a Conformer-Small/16 backbone, COCO, 1x schedule.
# Why these values: docs/detection.md#recipes.
_base_ = './maskrcnn_conformer_s32_coco.py'

model = dict(
    backbone=dict(
        arch='small',
        patch_size=16,
        init_cfg=dict(checkpoint='checkpoints/Conformer_small_patch16.pth')),
    neck=dict(in_channels=[256, 512, 1024, 1024]))
