# Mask R-CNN + FPN, GLNet-4G, COCO, 3x schedule (36 epochs, lr steps at 27 and 33) with
# multi-scale training (short side drawn from 480..800 in steps of 32, long side <= 1333, as in
# mmdet's Swin 3x configs, without their DETR-style crop branch).
# Why these values: docs/detection.md#recipes.
_base_ = './maskrcnn_glnet_4g_coco.py'

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize',
         scales=[(1333, short) for short in range(480, 801, 32)],
         keep_ratio=True),
    dict(type='PackDetInputs'),
]))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]
