# ImageNet-1k evaluation of the token-labeling GLNet-9G (see glnet_4g_tklb_in1k.py: evaluation
# only, the token-labeling training recipe is not supported). Published top-1: 85.3.
# Why these values: docs/classification.md#glnet.
_base_ = './glnet_4g_tklb_in1k.py'

model = dict(backbone=dict(arch='9g', drop_path_rate=0.1), head=dict(in_channels=768))
load_from = 'checkpoints/glnet_9g_tklb_cls.pth'
