# ImageNet-1k evaluation of GLNet-16G (convert checkpoints/glnet_16g.pth with
# tools/model_converters/glnet2mm.py --cls first). Published top-1: 85.0.
_base_ = './glnet_4g_in1k.py'

model = dict(backbone=dict(arch='16g', drop_path_rate=0.4), head=dict(in_channels=1024))
load_from = 'checkpoints/glnet_16g_cls.pth'
