# configs/maskrcnn_glnet_4g_coco.py on the generated demo data (tools/make_demo_data.py), with
# a backbone trained from scratch: the data, image scale and RoI sampling sizes of
# maskrcnn_glnet_4g_finetune_demo.py, and a from-scratch recipe: BatchNorm statistics are
# learned (norm_eval=False), drop path is off for this short run, the raw stage outputs go to
# FPN (out_norm=None), and the lr is 10x the pretrained one, with gradient clipping. (With
# this recipe the per-output LayerNorms kept the RoI classifier at its class prior; the shipped
# recipe, LayerNorms included, learns from scratch too: docs/detection.md, "Pretrained versus
# from scratch".)
_base_ = './maskrcnn_glnet_4g_finetune_demo.py'

model = dict(
    backbone=dict(init_cfg=None, norm_eval=False, drop_path_rate=0., out_norm=None))

# Schedule: 4 epochs of 100 iterations, lr warm-up then a step at epoch 3.
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3],
         gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=0.001), clip_grad=dict(max_norm=10))
# A checkpoint every epoch (an interrupted run loses at most the epoch in progress), the last
# two kept.
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
