# configs/upernet_glnet_4g_ade20k.py on the generated ADE20K-format demo data
# (tools/make_demo_data.py), with a backbone trained from scratch: the data and crop size of
# upernet_glnet_4g_finetune_demo.py, BatchNorm statistics learned, no drop path, a higher lr
# and a longer schedule.
# Why these values: docs/segmentation.md#demo.
_base_ = './upernet_glnet_4g_finetune_demo.py'

model = dict(backbone=dict(init_cfg=None, norm_eval=False, drop_path_rate=0.))

# Schedule: 400 iterations, warm-up 50, then poly decay; higher lr for training from scratch.
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=50, end=max_iters),
]
optim_wrapper = dict(optimizer=dict(lr=0.001))
# A checkpoint every 100 iterations, the last two kept. Ctrl-C or SIGTERM
# saves the iteration just completed before stopping; only a hard kill loses up to 100.
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=100, max_keep_ckpts=2))
