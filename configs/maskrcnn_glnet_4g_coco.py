# Mask R-CNN + FPN with a GLNet-4G backbone, COCO, 1x schedule (12 epochs, lr steps at 8, 11).
# Pretrained backbone: the released ImageNet checkpoint, as downloaded (see README).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/default_runtime.py',
    './_base_/glnet_det_recipe.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='GLNet',
        arch='4g',
        drop_path_rate=0.2,
        # One LayerNorm per output, new layers trained with the detector (as BiFormer does):
        # the raw stage outputs have large, stage-dependent magnitudes. Why, measured:
        # docs/detection.md#recipes and docs/detection.md#pretrained-versus-from-scratch.
        out_norm=dict(type='LN2d', eps=1e-6),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/glnet_4g.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
