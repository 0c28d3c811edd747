crop_size = (
    128,
    128,
)
custom_hooks = [
    dict(type='RNGStateHook'),
]
custom_imports = dict(
    allow_failed_imports=False, imports=[
        'glmix_mm',
    ])
data_preprocessor = dict(
    _scope_='mmseg',
    bgr_to_rgb=True,
    mean=[
        123.675,
        116.28,
        103.53,
    ],
    pad_val=0,
    seg_pad_val=255,
    std=[
        58.395,
        57.12,
        57.375,
    ],
    type='SegDataPreProcessor')
data_root = 'data/demo/ade/'
dataset = dict(
    data_root='data/demo/ade/',
    img_suffix='.jpg',
    metainfo=dict(
        classes=(
            'background',
            'square',
            'disc',
            'triangle',
        ),
        palette=[
            [
                0,
                0,
                0,
            ],
            [
                220,
                20,
                60,
            ],
            [
                0,
                128,
                255,
            ],
            [
                255,
                200,
                0,
            ],
        ]),
    reduce_zero_label=False,
    seg_map_suffix='.png',
    type='BaseSegDataset')
dataset_type = 'ADE20KDataset'
default_hooks = dict(
    checkpoint=dict(
        _scope_='mmseg',
        by_epoch=False,
        interval=400,
        max_keep_ckpts=1,
        type='CheckpointHook'),
    logger=dict(
        _scope_='mmseg',
        interval=20,
        log_metric_by_epoch=False,
        type='LoggerHook'),
    param_scheduler=dict(_scope_='mmseg', type='ParamSchedulerHook'),
    sampler_seed=dict(_scope_='mmseg', type='DistSamplerSeedHook'),
    timer=dict(_scope_='mmseg', type='IterTimerHook'),
    visualization=dict(
        _scope_='mmseg', draw=True, interval=1, type='SegVisualizationHook'))
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    dist_cfg=dict(backend='nccl'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
glnet_paramwise_cfg = dict(
    custom_keys=dict({
        '.gamma': dict(decay_mult=0.0),
        'init_slots': dict(decay_mult=0.0),
        'norm': dict(decay_mult=0.0),
        'slot_scale': dict(decay_mult=0.0)
    }),
    norm_decay_mult=0.0)
img_ratios = [
    0.5,
    0.75,
    1.0,
    1.25,
    1.5,
    1.75,
]
launcher = 'none'
load_from = 'work_dirs/seg_demo/iter_400.pth'
log_level = 'INFO'
log_processor = dict(by_epoch=False)
max_iters = 400
metainfo = dict(
    classes=(
        'background',
        'square',
        'disc',
        'triangle',
    ),
    palette=[
        [
            0,
            0,
            0,
        ],
        [
            220,
            20,
            60,
        ],
        [
            0,
            128,
            255,
        ],
        [
            255,
            200,
            0,
        ],
    ])
model = dict(
    _scope_='mmseg',
    auxiliary_head=dict(
        align_corners=False,
        channels=256,
        concat_input=False,
        dropout_ratio=0.1,
        in_channels=256,
        in_index=2,
        loss_decode=dict(
            loss_weight=0.4, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=4,
        num_convs=1,
        type='FCNHead'),
    backbone=dict(
        arch='4g',
        drop_path_rate=0.0,
        init_cfg=None,
        norm_eval=False,
        out_norm=dict(eps=1e-06, type='LN2d'),
        type='GLNet'),
    data_preprocessor=dict(
        bgr_to_rgb=True,
        mean=[
            123.675,
            116.28,
            103.53,
        ],
        pad_val=0,
        seg_pad_val=255,
        size=(
            128,
            128,
        ),
        std=[
            58.395,
            57.12,
            57.375,
        ],
        test_cfg=dict(size_divisor=32),
        type='SegDataPreProcessor'),
    decode_head=dict(
        align_corners=False,
        channels=512,
        dropout_ratio=0.1,
        in_channels=[
            64,
            128,
            256,
            512,
        ],
        in_index=[
            0,
            1,
            2,
            3,
        ],
        loss_decode=dict(
            loss_weight=1.0, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=4,
        pool_scales=(
            1,
            2,
            3,
            6,
        ),
        type='UPerHead'),
    pretrained=None,
    test_cfg=dict(crop_size=(
        512,
        512,
    ), mode='whole', stride=(
        341,
        341,
    )),
    train_cfg=dict(),
    type='EncoderDecoder')
norm_cfg = dict(_scope_='mmseg', requires_grad=True, type='SyncBN')
optim_wrapper = dict(
    optimizer=dict(
        betas=(
            0.9,
            0.999,
        ), lr=0.001, type='AdamW', weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict({
            '.gamma': dict(decay_mult=0.0),
            'init_slots': dict(decay_mult=0.0),
            'norm': dict(decay_mult=0.0),
            'slot_scale': dict(decay_mult=0.0)
        }),
        norm_decay_mult=0.0),
    type='OptimWrapper')
optimizer = dict(
    _scope_='mmseg', lr=0.01, momentum=0.9, type='SGD', weight_decay=0.0005)
param_scheduler = [
    dict(begin=0, by_epoch=False, end=50, start_factor=0.01, type='LinearLR'),
    dict(
        begin=50,
        by_epoch=False,
        end=400,
        eta_min=0.0,
        power=1.0,
        type='PolyLR'),
]
resume = False
test_cfg = dict(_scope_='mmseg', type='TestLoop')
test_dataloader = dict(
    batch_size=1,
    dataset=dict(
        _scope_='mmseg',
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        data_root='data/demo/ade/',
        img_suffix='.jpg',
        metainfo=dict(
            classes=(
                'background',
                'square',
                'disc',
                'triangle',
            ),
            palette=[
                [
                    0,
                    0,
                    0,
                ],
                [
                    220,
                    20,
                    60,
                ],
                [
                    0,
                    128,
                    255,
                ],
                [
                    255,
                    200,
                    0,
                ],
            ]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ],
        reduce_zero_label=False,
        seg_map_suffix='.png',
        type='BaseSegDataset'),
    num_workers=1,
    persistent_workers=True,
    sampler=dict(_scope_='mmseg', shuffle=False, type='DefaultSampler'))
test_evaluator = dict(
    _scope_='mmseg', iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_cfg = dict(
    _scope_='mmseg',
    max_iters=400,
    type='IterBasedTrainLoop',
    val_interval=400)
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        _scope_='mmseg',
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        data_root='data/demo/ade/',
        img_suffix='.jpg',
        metainfo=dict(
            classes=(
                'background',
                'square',
                'disc',
                'triangle',
            ),
            palette=[
                [
                    0,
                    0,
                    0,
                ],
                [
                    220,
                    20,
                    60,
                ],
                [
                    0,
                    128,
                    255,
                ],
                [
                    255,
                    200,
                    0,
                ],
            ]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(prob=0.5, type='RandomFlip'),
            dict(type='PackSegInputs'),
        ],
        reduce_zero_label=False,
        seg_map_suffix='.png',
        type='BaseSegDataset'),
    num_workers=1,
    persistent_workers=True,
    sampler=dict(_scope_='mmseg', shuffle=True, type='InfiniteSampler'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(prob=0.5, type='RandomFlip'),
    dict(type='PackSegInputs'),
]
tta_model = dict(_scope_='mmseg', type='SegTTAModel')
tta_pipeline = [
    dict(_scope_='mmseg', backend_args=None, type='LoadImageFromFile'),
    dict(
        _scope_='mmseg',
        transforms=[
            [
                dict(keep_ratio=True, scale_factor=0.5, type='Resize'),
                dict(keep_ratio=True, scale_factor=0.75, type='Resize'),
                dict(keep_ratio=True, scale_factor=1.0, type='Resize'),
                dict(keep_ratio=True, scale_factor=1.25, type='Resize'),
                dict(keep_ratio=True, scale_factor=1.5, type='Resize'),
                dict(keep_ratio=True, scale_factor=1.75, type='Resize'),
            ],
            [
                dict(direction='horizontal', prob=0.0, type='RandomFlip'),
                dict(direction='horizontal', prob=1.0, type='RandomFlip'),
            ],
            [
                dict(type='LoadAnnotations'),
            ],
            [
                dict(type='PackSegInputs'),
            ],
        ],
        type='TestTimeAug'),
]
val_cfg = dict(_scope_='mmseg', type='ValLoop')
val_dataloader = dict(
    batch_size=1,
    dataset=dict(
        _scope_='mmseg',
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        data_root='data/demo/ade/',
        img_suffix='.jpg',
        metainfo=dict(
            classes=(
                'background',
                'square',
                'disc',
                'triangle',
            ),
            palette=[
                [
                    0,
                    0,
                    0,
                ],
                [
                    220,
                    20,
                    60,
                ],
                [
                    0,
                    128,
                    255,
                ],
                [
                    255,
                    200,
                    0,
                ],
            ]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ],
        reduce_zero_label=False,
        seg_map_suffix='.png',
        type='BaseSegDataset'),
    num_workers=1,
    persistent_workers=True,
    sampler=dict(_scope_='mmseg', shuffle=False, type='DefaultSampler'))
val_evaluator = dict(
    _scope_='mmseg', iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
vis_backends = [
    dict(_scope_='mmseg', type='LocalVisBackend'),
]
visualizer = dict(
    _scope_='mmseg',
    name='visualizer',
    save_dir='vis',
    type='SegLocalVisualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
    ])
work_dir = 'work_dirs/seg_demo'
