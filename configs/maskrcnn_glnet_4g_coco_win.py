# Mask R-CNN + FPN, GLNet-4G with windowed MHSA, COCO, 1x schedule: maskrcnn_glnet_4g_coco.py
# with the MHSA blocks (third-stage hybrid blocks and the last stage) attending inside 14x14
# windows instead of globally. Same weights and parameters; global context still flows through
# the GLMix blocks' semantic slots. 14x14 is the whole third-stage map at the 224x224 ImageNet
# resolution, so the windowed backbone computes exactly the pretrained model there.
# FLOPs and speed against the global-attention backbone: docs/benchmarks.md. Detection accuracy
# of this variant has NOT been measured.
_base_ = './maskrcnn_glnet_4g_coco.py'

model = dict(backbone=dict(mhsa_window=14))
