# GLNet-9G on ImageNet-1k: evaluation of the release (convert checkpoints/glnet_9g.pth with
# tools/model_converters/glnet2mm.py --cls first; published top-1 84.5) and training from
# scratch with the authors' recipe, as in glnet_4g_in1k.py, with drop path 0.3 (upstream
# README; its scripts/train_cx2.sh passes 0.1). No ImageNet training was run here.
# Why these values: docs/classification.md#glnet.
_base_ = './glnet_4g_in1k.py'

model = dict(backbone=dict(arch='9g', drop_path_rate=0.3), head=dict(in_channels=768))
