# Mask R-CNN + FPN with a Conformer-Base/16 backbone, COCO, 1x schedule.
# Why these values: docs/detection.md#recipes.
_base_ = './maskrcnn_conformer_s32_coco.py'

model = dict(
    backbone=dict(
        arch='base',
        patch_size=16,
        init_cfg=dict(checkpoint='checkpoints/Conformer_base_patch16.pth')),
    neck=dict(in_channels=[384, 768, 1536, 1536]))
