# The reference row of the segmentation fine-tuning comparison (docs/segmentation.md): mmseg's
# UperNet ResNet-50 recipe (mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py: SGD lr
# 0.01, momentum 0.9, weight decay 5e-4, poly decay of power 0.9 to 1e-4, BatchNorm statistics
# learned) on the data and schedule length of upernet_glnet_4g_finetune_demo.py, from the
# ResNet-50 pretrained by configs/demo/resnet50_pretrain_demo.py. That pretraining has the
# plain ResNet stem, so the backbone is mmseg's ResNet rather than its ResNetV1c (deep stem);
# plain BatchNorm instead of SyncBN on one CPU process.
_base_ = './upernet_glnet_4g_finetune_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/demo/resnet50_pretrained.pth')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=1e-4, by_epoch=False, begin=0,
         end={{_base_.max_iters}}),
]
