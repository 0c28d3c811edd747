# UperNet recipe on ADE20K, 160k iterations of 512x512 crops, 16 images per iteration (2 per GPU
# on 8 GPUs). GLNet's segmentation code was never released: the values are the GLNet author's
# BiFormer UperNet recipe (rayleizhu/BiFormer, semantic_segmentation/configs/ade20k/
# upernet.biformer_{small,base}.py, itself Swin's mmseg recipe): AdamW lr 6e-5, betas
# (0.9, 0.999), weight decay 0.01 except norms, linear warm-up over 1500 iterations from 1e-6,
# then poly decay (power 1.0) to 0; drop path 0.3 (small) / 0.4 (base). The Conformer UperNet
# configs use the same recipe (no published one).
# Why these values: docs/segmentation.md#configs.
_base_ = ['mmseg::_base_/schedules/schedule_160k.py', './glnet_common.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg={{_base_.glnet_paramwise_cfg}})
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=160000),
]
