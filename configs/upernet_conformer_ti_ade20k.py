# UperNet with a Conformer-Tiny/16 backbone on ADE20K, 160k iterations.
# Why these values: docs/segmentation.md#configs.
_base_ = './upernet_conformer_s16_ade20k.py'

model = dict(
    backbone=dict(
        arch='tiny',
        patch_size=16,
        init_cfg=dict(checkpoint='checkpoints/Conformer_tiny_patch16.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 256]),
    auxiliary_head=dict(in_channels=256))
