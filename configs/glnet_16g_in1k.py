# GLNet-16G on ImageNet-1k: evaluation of the release (convert checkpoints/glnet_16g.pth with
# tools/model_converters/glnet2mm.py --cls first; its EMA weights are the published ones;
# published top-1 85.0) and training from scratch with the authors' recipe, as in
# glnet_4g_in1k.py, with drop path 0.4 (upstream README). Its layer scales (gamma) get no weight
# decay, as upstream. No ImageNet training was run here.
# Why these values: docs/classification.md#glnet.
_base_ = './glnet_4g_in1k.py'

model = dict(backbone=dict(arch='16g', drop_path_rate=0.4), head=dict(in_channels=1024))
