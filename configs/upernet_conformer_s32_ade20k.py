# UperNet with a Conformer-Small/32 backbone on ADE20K, 160k iterations.
# Why these values: docs/segmentation.md#configs.
_base_ = './upernet_conformer_s16_ade20k.py'

model = dict(
    backbone=dict(
        arch='small',
        patch_size=32,
        init_cfg=dict(checkpoint='checkpoints/Conformer_small_patch32.pth')),
    decode_head=dict(in_channels=[256, 512, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
