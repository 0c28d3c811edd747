# Any stock MMDetection config takes a glmix_mm backbone: import the plugin, replace the
# backbone, match the neck's input channels. Here mmdet's Cascade Mask R-CNN R-50 1x.
# Why these values: docs/detection.md#recipes.
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['glmix_mm'], allow_failed_imports=False)
# The glmix_mm hooks of configs/_base_/glnet_common.py (random states in checkpoints, checkpoints
# checked against the model, interrupt-safe training, compile support), so that the stock
# mmdet tools/train.py gets them too (this repository's tools add the missing ones anyway).
custom_hooks = [
    dict(type='RNGStateHook'),
    dict(type='CheckpointFitHook'),
    dict(type='ResumableTrainingHook'),
    dict(type='EagerOptimizerStepHook'),
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='GLNet',
        arch='4g',
        drop_path_rate=0.2,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/glnet_4g.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
