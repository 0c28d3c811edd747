# Fine-tuning half of the pretrain-then-fine-tune demo (docs/detection.md, "Pretrained versus
# from scratch"): configs/maskrcnn_glnet_4g_coco.py, as shipped, on the generated detection demo
# data (tools/make_demo_data.py), from the backbone that configs/demo/glnet_4g_pretrain_demo.py
# pretrained (saved in the upstream release layout by tools/model_converters/mm2glnet.py).
# Changed: the data (3 shape classes, 128x128 images), the image scale, the class count, the
# schedule length (below) and the checkpoint path; and, sized to 128-pixel images with <= 4
# objects, the proposal and RoI sampling counts (COCO's 1000 proposals and 512 sampled RoIs per
# image would only make each CPU step slower). The backbone options (per-output LayerNorms,
# norm_eval, drop path 0.2) and the optimizer (AdamW, lr 1e-4, no clipping) are as shipped.
_base_ = '../maskrcnn_glnet_4g_coco.py'

data_root = 'data/demo/coco/'
metainfo = dict(
    classes=('square', 'disc', 'triangle'),
    palette=[(220, 20, 60), (0, 128, 255), (255, 200, 0)])
image_scale = (128, 128)

model = dict(
    backbone=dict(init_cfg=dict(checkpoint='checkpoints/demo/glnet_4g_pretrained.pth')),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(max_per_img=300), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

# The 1x schedule in 200 iterations (2 epochs of 100, batch 4): linear warm-up from 0.001 (25
# iterations), lr x0.1 after 8/12 and 11/12 of the run.
max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=25),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=200, milestones=[133, 183],
         gamma=0.1),
]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=1, max_keep_ckpts=1))
