# UperNet with a GLNet-9G backbone on ADE20K, 160k iterations (drop path 0.4 as BiFormer-B).
# Why these values: docs/segmentation.md#configs.
_base_ = './upernet_glnet_4g_ade20k.py'

model = dict(
    backbone=dict(
        arch='9g',
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint='checkpoints/glnet_9g.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
