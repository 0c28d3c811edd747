# UperNet with a Conformer-Base/16 backbone on ADE20K, 160k iterations.
# Why these values: docs/segmentation.md#configs.
_base_ = './upernet_conformer_s16_ade20k.py'

model = dict(
    backbone=dict(
        arch='base',
        patch_size=16,
        init_cfg=dict(checkpoint='checkpoints/Conformer_base_patch16.pth')),
    decode_head=dict(in_channels=[384, 768, 1536, 1536]),
    auxiliary_head=dict(in_channels=1536))
