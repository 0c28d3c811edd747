# Detection recipe shared by the Conformer configs, as in the authors' MMDetection configs
# (pengzhiliang/Conformer, mmdetection/configs/{mask,faster}_rcnn/*_conformer_small_patch32_*):
# AdamW lr 1e-4, weight decay 1e-4, 500-iteration linear warm-up, steps at epochs 8 and 11,
# images resized to 1344x800, BatchNorm in eval mode, stem frozen (their frozen_stages=1, which
# is our frozen_stages=0, see the Conformer docstring).
# Why these values: docs/detection.md#recipes.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', './glnet_common.py']

# mmdet's epoch loop, resuming inside an epoch after an interruption (docs/clusters.md).
train_cfg = dict(type='ResumableEpochBasedTrainLoop')

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001))

image_scale = (1344, 800)
