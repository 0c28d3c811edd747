# UperNet with a GLNet-4G backbone on ADE20K, 160k iterations, 512x512 crops. Inference slides
# 512x512 windows (stride 341) over the image padded to a multiple of 32.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/glnet_upernet_recipe.py',
]

crop_size = {{_base_.crop_size}}
model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=32)),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='GLNet',
        arch='4g',
        drop_path_rate=0.3,
        # One LayerNorm per output, as in the COCO configs; measured with and without:
        # docs/segmentation.md#pretrained-versus-from-scratch.
        out_norm=dict(type='LN2d', eps=1e-6),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/glnet_4g.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512], num_classes=150),
    auxiliary_head=dict(in_channels=256, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
train_dataloader = dict(batch_size=2)
