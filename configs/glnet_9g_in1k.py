# ImageNet-1k evaluation of GLNet-9G (convert checkpoints/glnet_9g.pth with
# tools/model_converters/glnet2mm.py --cls first). Published top-1: 84.5.
_base_ = './glnet_4g_in1k.py'

model = dict(backbone=dict(arch='9g', drop_path_rate=0.3), head=dict(in_channels=768))
load_from = 'checkpoints/glnet_9g_cls.pth'
