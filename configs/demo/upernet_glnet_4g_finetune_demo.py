# Fine-tuning half of the pretrain-then-fine-tune demo for segmentation (docs/segmentation.md,
# "Pretrained versus from scratch"): configs/upernet_glnet_4g_ade20k.py, as shipped, on the
# generated ADE20K-format demo data (tools/make_demo_data.py), from the backbone that
# configs/demo/glnet_4g_pretrain_demo.py pretrained (saved in the upstream release layout by
# tools/model_converters/mm2glnet.py). Changed: the data (background + 3 shape classes, 128x128
# images), the crop size (whole-image inference), the class count, the schedule length (below)
# and the checkpoint path. The backbone options (per-output LayerNorms, norm_eval, drop path
# 0.3) and the optimizer (AdamW, lr 6e-5) are as shipped.
_base_ = '../upernet_glnet_4g_ade20k.py'

data_root = 'data/demo/ade/'
metainfo = dict(
    classes=('background', 'square', 'disc', 'triangle'),
    palette=[[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0]])
crop_size = (128, 128)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(checkpoint='checkpoints/demo/glnet_4g_pretrained.pth')),
    decode_head=dict(num_classes=4),
    auxiliary_head=dict(num_classes=4),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# The 160k schedule in 120 iterations of batch 4: linear warm-up from 1e-6 (15 iterations),
# then poly decay to 0.
max_iters = 120
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=15),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=15, end=max_iters),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
