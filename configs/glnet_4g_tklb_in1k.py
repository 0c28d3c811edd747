# ImageNet-1k evaluation of the token-labeling GLNet-4G (convert checkpoints/glnet_4g_tklb.pth
# with tools/model_converters/glnet2mm.py --cls first; its auxiliary head becomes head.aux_fc).
# Logits: fc(average-pooled map) + 0.5 * max over positions of aux_fc, as upstream.
# Published top-1: 84.4.
# Evaluation only. The training settings inherited from glnet_4g_in1k.py are the standard recipe
# (upstream main_cx2.py), not the one these models were trained with: upstream main_tklb.py
# (configs/main_tklb.yaml, scripts/train_tklb.sh: 310 epochs, dense token-label targets from a
# teacher, no EMA), which is not supported here. Drop path 0.1 as the upstream README gives.
# Why these values: docs/classification.md#glnet.
_base_ = './glnet_4g_in1k.py'

model = dict(
    backbone=dict(drop_path_rate=0.1),
    neck=None,
    head=dict(type='TokenLabelingClsHead', aux_weight=0.5))
load_from = 'checkpoints/glnet_4g_tklb_cls.pth'
