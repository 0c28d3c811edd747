# GLNet-4G on ImageNet-1k with MMPretrain: evaluation of the released model, and training with
# the authors' recipe.
#
# Evaluation. Convert the release to a classifier checkpoint, then test:
#   python tools/model_converters/glnet2mm.py checkpoints/glnet_4g.pth \
#       checkpoints/glnet_4g_cls.pth --cls
#   python tools/test.py configs/glnet_4g_in1k.py checkpoints/glnet_4g_cls.pth
# As upstream: short side resized to 256 (bicubic, PIL), 224 centre crop. Published top-1: 83.7
# (upstream README). A checkpoint trained with this config is evaluated with its EMA weights
# (EMAHook below); a converted release, which has one set of weights, with those.
#
# Training. The recipe of the upstream training script (github.com/rayleizhu/GLMix: main_cx2.py,
# configs/main_cx2.yaml, the ConvNextV2/ helpers, timm 0.9.10 per environment.yaml), value by
# value; each value names its upstream source ("yaml:N" is configs/main_cx2.yaml line N,
# "script" is scripts/train_cx2.sh, "README" the upstream README). No ImageNet training was run
# here: the recipe ran only for a few iterations on generated data
# (tests/test_tools/test_in1k_train.py).
#   bash tools/dist_train.sh configs/glnet_4g_in1k.py 16
# - Training starts from scratch (load_from = None below); to fine-tune the release instead, add
#   --cfg-options load_from=checkpoints/glnet_4g_cls.pth. tools/test.py loads the checkpoint it
#   is given, so evaluation needs no load_from.
# - Global batch 2048 (README), upstream 16 GPUs x 128 (script lines 9 and 14). On 8 GPUs keep
#   2048 with train_dataloader.batch_size=256; for any other global batch add --auto-scale-lr,
#   which scales lr linearly from 2e-3 at 2048: upstream's own rule when lr is not given
#   (main_cx2.py:199-201, 2.5e-4 x batch / 256, i.e. 2e-3 at 2048). MMEngine leaves gradient
#   accumulation (optim_wrapper.accumulative_counts) out of that batch size.
# - Mixed precision as upstream (yaml:84, float16 autocast with a dynamic loss scale,
#   ConvNextV2/utils.py:484-504): AmpOptimWrapper needs a GPU. On the CPU add
#   --cfg-options optim_wrapper.type=OptimWrapper (and --amp for bfloat16 autocast).
# - Differences that remain (MMPretrain's implementations): Mixup/CutMix pair each image with a
#   random permutation of the batch (timm: the reversed batch); random erasing makes one attempt
#   (timm: up to 10) and fills uint8 pixels, so its normal noise is clipped to the 0-255 range;
#   the repeated-augmentation sampler keeps ceil(N / GPUs) samples per GPU (upstream rounds N
#   down to a multiple of 256 first, samplers.py:32: 143 images fewer per epoch) and seeds its
#   shuffle with seed + epoch (upstream: the epoch); LinearLR reaches the full lr at the last
#   warm-up iteration (upstream one iteration later); images decode with OpenCV (upstream: PIL).
# Why these values: docs/classification.md#training-on-imagenet-1k.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
    './_base_/glnet_common.py',
]

model = dict(
    type='ImageClassifier',
    # The ImageNet models' pre-head BatchNorm is the norm of the last output (norm3). Plain BN
    # per GPU as upstream (no SyncBN conversion in main_cx2.py).
    backbone=dict(
        type='GLNet',
        arch='4g',
        out_indices=(3, ),
        out_norm=dict(type='BN'),
        drop_path_rate=0.15),  # README: 0.15 / 0.3 / 0.4 for 4G / 9G / 16G, 0.1 for STL
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        # Label smoothing 0.1 (yaml:43) of the mixed one-hot targets, with soft-target cross
        # entropy (main_cx2.py:129-132, 241-243; timm mixup_target).
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        # Upstream initialises every Linear with trunc_normal(std=.02), bias 0 (models/glnet.py:
        # 551-557); MMPretrain's default for the head is normal(std=.01).
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
        topk=(1, 5)),
    # Mixup alpha 0.8 (yaml:49) or CutMix alpha 1.0 (yaml:50) on every batch (mixup_prob 1.0,
    # yaml:52), switching with probability 0.5 (yaml:53); CutMix lambda corrected for clipped
    # boxes (timm Mixup default correct_lam=True, MMPretrain CutMix default too).
    train_cfg=dict(
        augments=[dict(type='Mixup', alpha=0.8),
                  dict(type='CutMix', alpha=1.0)],
        probs=[0.5, 0.5]))
load_from = None

# Data: timm create_transform(224, is_training=True, color_jitter=0.4, auto_augment=
# 'rand-m9-mstd0.5-inc1', interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1)
# (datasets.py:82-91, yaml:40-47) with timm's defaults, in MMPretrain's transforms. Images are
# BGR until the data preprocessor, hence the BGR fill values.
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # timm RandomResizedCropAndInterpolation defaults: scale (0.08, 1), ratio (3/4, 4/3), 10
    # attempts; bicubic (yaml:44) on PIL images.
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.08, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        max_attempts=10,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),  # timm hflip=0.5
    # rand-m9-mstd0.5-inc1 (yaml:42): 2 ops per image (timm default n=2), each applied with
    # probability 0.5, from timm's increasing-severity set (_RAND_INCREASING_TRANSFORMS =
    # 'timm_increasing'), magnitude 9 of 10 with N(0, 0.5) noise clipped to [0, 10]; geometric
    # ops fill with the mean colour (timm img_mean (124, 116, 104) RGB) and resample bicubic
    # (the train interpolation). Colour jitter 0.4 (yaml:40) was not in effect: timm's
    # create_transform adds it only without auto_augment (timm 1.0.31 transforms_factory.py:
    # 182-187, 206; older timm: an elif after the auto_augment branch).
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    # Random erasing: probability 0.25 (yaml:45), one box (yaml:47), mode 'pixel' (yaml:46:
    # per-pixel normal noise after normalisation, i.e. N(mean, std) before it), timm's area
    # 0.02-1/3 and aspect ratio 0.3-1/0.3 (log-uniform).
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        aspect_range=(0.3, 1 / 0.3),
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
# Evaluation as upstream (datasets.py:99-105): resize the short side to 256 (224 / 0.875),
# bicubic on PIL images, centre crop 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,  # per GPU: 16 x 128 = 2048 (script lines 9 and 14)
    drop_last=True,  # main_cx2.py:111
    dataset=dict(pipeline=train_pipeline),
    # Repeated augmentation (yaml:35): 3 augmented copies of each sample on different GPUs, one
    # epoch as long as the dataset (samplers.py:29-53; MMPretrain's sampler is the same DeiT one).
    sampler=dict(type='RepeatAugSampler', shuffle=True, num_repeats=3))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# AdamW (yaml:28), eps 1e-8 (yaml:29), torch's default betas (yaml:30: null), weight decay 0.05
# (yaml:21), lr 2e-3 for the global batch of 2048 (README; script line 12; an lr given this way
# is used as it is, main_cx2.py:199 derives one from blr only when lr is null), gradient norm
# clipped at 5.0 (README; script line 12; clipped after unscaling, ConvNextV2/utils.py:490-501).
# No weight decay, as ConvNextV2/optim_factory.py:104-107 decides: every 1-D parameter (norms,
# biases, in_proj_bias), every name ending in '.bias', '.gamma' (the layer scales of 16G) or
# '.beta'; the model's no_weight_decay() names (pos_embed, cls_token, models/glnet.py:563-564;
# main_cx2.py:235-238 passes skip_list=None) are none of GLNet's. So the learnable slot scales (0-d
# tensors) are decayed here, as upstream; configs/_base_/glnet_common.py's glnet_paramwise_cfg
# (the detection / segmentation configs) differs: it exempts slot_scale and init_slots and
# decays the biases of convolutions and linear layers.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        flat_decay_mult=0.,
        custom_keys={
            '.gamma': dict(decay_mult=0.),
            '.beta': dict(decay_mult=0.),
        }))
auto_scale_lr = dict(base_batch_size=2048)

# 300 epochs (yaml:3). The lr changes every iteration (engine_finetune.py:38-39): linear warm-up
# from 0 over 5 epochs (yaml:26), then half-cycle cosine down to 1e-5 (yaml:25; not scaled with
# the batch) at epoch 300 (ConvNextV2/utils.py:624-635). LinearLR needs a positive start factor:
# 1e-6 (lr 2e-9 instead of 0 at the first iteration).
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=295,
        eta_min=1e-5,
        by_epoch=True,
        begin=5,
        end=300,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)  # evaluated every epoch
val_cfg = dict()
test_cfg = dict()

# EMA of the weights and of the BatchNorm statistics (timm ModelEma averages the whole state
# dict), decay 0.9999 (yaml:16; script line 12), updated after every optimizer step
# (engine_finetune.py:68-79, update_freq 1). MMEngine's momentum is 1 - decay:
# ema = (1 - momentum) * ema + momentum * weights. Validation (and tools/test.py) use the EMA
# weights; upstream evaluated both (main_cx2.py:326, 347-349): add evaluate_on_origin=True to
# also evaluate the raw weights (every evaluation then runs twice).
custom_hooks = _base_.custom_hooks + [
    dict(
        type='EMAHook',
        momentum=1e-4,
        update_buffers=True,
        priority='ABOVE_NORMAL'),
]
# A checkpoint every epoch (yaml:70-72 keeps one; here the last two).
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
# Seed 0 plus the rank (yaml:64, main_cx2.py:67-69), cuDNN benchmark (main_cx2.py:70), and
# PyTorch DDP's buffer broadcast (main_cx2.py:231 uses DDP's defaults: every GPU gets rank 0's
# BatchNorm statistics; MMEngine's default leaves them per GPU).
randomness = dict(seed=0, diff_rank_seed=True)
env_cfg = dict(cudnn_benchmark=True)
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel',
    broadcast_buffers=True,
    find_unused_parameters=False)
