# configs/maskrcnn_glnet_4g_coco.py on the generated demo data (tools/make_demo_data.py):
# same model and recipe; changed are the data (3 shape classes, 128x128 images), the image
# scale, the schedule (and its learning rate), the RoI sampling sizes, and, as no ImageNet
# weights can be downloaded here, a backbone trained from scratch: BatchNorm statistics are
# learned (norm_eval=False), drop path is off for this short run, and the raw stage outputs go
# to FPN (out_norm=None): with the per-output LayerNorms, meant for a pretrained backbone, the
# from-scratch RoI classifier stayed at its class prior (docs/detection.md, "Demo", has the
# losses and the training time).
_base_ = '../maskrcnn_glnet_4g_coco.py'

data_root = 'data/demo/coco/'
metainfo = dict(
    classes=('square', 'disc', 'triangle'),
    palette=[(220, 20, 60), (0, 128, 255), (255, 200, 0)])
image_scale = (128, 128)

model = dict(
    backbone=dict(init_cfg=None, norm_eval=False, drop_path_rate=0., out_norm=None),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    # Proposals and sampled RoIs sized to 128-pixel images with <= 4 objects (COCO's 1000
    # proposals and 512 sampled RoIs per image would make every CPU step several times slower
    # for nothing).
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

# Schedule: 4 epochs of 100 iterations, lr warm-up then a step at epoch 3.
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3],
         gamma=0.1),
]
# From scratch: 10x the pretrained-backbone lr, with gradient clipping.
optim_wrapper = dict(optimizer=dict(lr=0.001), clip_grad=dict(max_norm=10))
# A checkpoint every epoch (an interrupted run loses at most the epoch in progress), the last
# two kept.
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
