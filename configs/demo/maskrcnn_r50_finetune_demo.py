# The reference row of the detection fine-tuning comparison (docs/detection.md): mmdet's Mask
# R-CNN ResNet-50 1x recipe (mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py: the backbone
# options of mmdet::_base_/models/mask-rcnn_r50_fpn.py, SGD lr 0.02, momentum 0.9, weight decay
# 1e-4) on the data and schedule of maskrcnn_glnet_4g_finetune_demo.py, from the ResNet-50
# pretrained by configs/demo/resnet50_pretrain_demo.py. The lr is mmdet's 0.02 for 16 images
# scaled linearly to this batch of 4 (mmdet's auto_scale_lr rule, base_batch_size=16); why not
# 0.02: docs/detection.md#pretrained-versus-from-scratch.
_base_ = './maskrcnn_glnet_4g_finetune_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/demo/resnet50_pretrained.pth')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02 * 4 / 16, momentum=0.9, weight_decay=0.0001))
