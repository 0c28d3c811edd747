# The reference of the pretrain-then-fine-tune demo: MMPretrain's ResNet-50 pretrained by the
# same protocol as GLNet-4G (configs/demo/glnet_4g_pretrain_demo.py: same data, augmentation,
# optimizer, schedule, EMA and drop path); only the backbone and the head's input width differ.
#   python tools/train.py configs/demo/resnet50_pretrain_demo.py
# configs/demo/maskrcnn_r50_finetune_demo.py and upernet_r50_finetune_demo.py read its last
# checkpoint (copied to checkpoints/demo/resnet50_pretrained.pth) with prefix='backbone.'.
# Why these values: docs/classification.md#pretrain-then-fine-tune-demo.
_base_ = './glnet_4g_pretrain_demo.py'

model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=50, drop_path_rate=0.15),
    head=dict(in_channels=2048))
