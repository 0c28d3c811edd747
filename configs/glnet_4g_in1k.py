# ImageNet-1k evaluation (and fine-tuning) of GLNet-4G with MMPretrain. The released weights
# must first be converted to a classifier checkpoint:
#   python tools/model_converters/glnet2mm.py checkpoints/glnet_4g.pth \
#       checkpoints/glnet_4g_cls.pth --cls
# Evaluation as upstream: short side resized to 256 (bicubic, PIL), 224 center crop.
# Published top-1: 83.7 (upstream README).
# Training (not run here): MMPretrain's Swin ImageNet recipe (300 epochs, AdamW, cosine, 20
# warm-up epochs, RandAugment, Mixup/CutMix, label smoothing) with the upstream README's
# settings: lr 2e-3 for a global batch of 2048, gradient clipping at 5.0, drop path 0.15 (4G),
# 0.3 (9G), 0.4 (16G), 0.1 (STL).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    './_base_/glnet_common.py',
]

model = dict(
    type='ImageClassifier',
    # The ImageNet models' pre-head BatchNorm is the norm of the last output (norm3).
    backbone=dict(
        type='GLNet',
        arch='4g',
        out_indices=(3, ),
        out_norm=dict(type='BN'),
        drop_path_rate=0.15),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
load_from = 'checkpoints/glnet_4g_cls.pth'

optim_wrapper = dict(
    optimizer=dict(lr=2e-3),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg={{_base_.glnet_paramwise_cfg}})
auto_scale_lr = dict(base_batch_size=2048)
