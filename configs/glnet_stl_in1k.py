# ImageNet-1k evaluation of GLNet-STL (convert checkpoints/glnet_stl.pth with
# tools/model_converters/glnet2mm.py --cls first). Published top-1: 82.5.
_base_ = './glnet_4g_in1k.py'

model = dict(backbone=dict(arch='stl', drop_path_rate=0.1), head=dict(in_channels=768))
load_from = 'checkpoints/glnet_stl_cls.pth'
