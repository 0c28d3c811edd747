# UperNet with a GLNet-16G backbone on ADE20K, 160k iterations. Drop path 0.5 continues
# the 4G/9G progression (0.3/0.4); not tuned.
# Why these values: docs/segmentation.md#configs.
_base_ = './upernet_glnet_4g_ade20k.py'

model = dict(
    backbone=dict(
        arch='16g',
        drop_path_rate=0.5,
        init_cfg=dict(checkpoint='checkpoints/glnet_16g.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
