# UperNet with a GLNet-STL backbone on ADE20K, 160k iterations (drop path 0.3 as mmseg uses
# for Swin-T, whose layout STL copies).
# Why these values: docs/segmentation.md#configs.
_base_ = './upernet_glnet_4g_ade20k.py'

model = dict(
    backbone=dict(
        arch='stl',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='checkpoints/glnet_stl.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
