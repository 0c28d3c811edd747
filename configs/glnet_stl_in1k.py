# GLNet-STL (Swin-Tiny layout) on ImageNet-1k: evaluation of the release (convert
# checkpoints/glnet_stl.pth with tools/model_converters/glnet2mm.py --cls first; published top-1
# 82.5) and training from scratch with the authors' recipe, as in glnet_4g_in1k.py, with drop
# path 0.1 (upstream README). No ImageNet training was run here.
# Why these values: docs/classification.md#glnet.
_base_ = './glnet_4g_in1k.py'

model = dict(backbone=dict(arch='stl', drop_path_rate=0.1), head=dict(in_channels=768))
