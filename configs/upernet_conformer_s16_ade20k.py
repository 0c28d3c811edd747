# UperNet with a Conformer-S/16 backbone on ADE20K, 160k iterations (recipe: see
# configs/_base_/glnet_upernet_recipe.py; Conformer has no published segmentation recipe).
# Why these values: docs/segmentation.md#configs.
_base_ = './upernet_glnet_4g_ade20k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='Conformer',
        arch='small',
        patch_size=16,
        drop_path_rate=0.1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/Conformer_small_patch16.pth')),
    decode_head=dict(in_channels=[256, 512, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
