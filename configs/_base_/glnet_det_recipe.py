# Detection recipe shared by the GLNet configs: mmdet's 1x schedule with this optimizer.
# GLNet's own detection code was never released; the values follow the same author's published
# recipe for BiFormer (rayleizhu/BiFormer, object_detection/configs/coco/
# maskrcnn.1x.biformer_{small,base}.py), whose small/base models have exactly GLNet-4G/9G's
# stage depths and widths: AdamW, lr 1e-4, betas (0.9, 0.999), weight decay 0.05, no weight
# decay on norms (see glnet_common.py), drop path 0.2 (small) / 0.3 (base), BatchNorm in eval
# mode (norm_eval), one LayerNorm per output map.
# Why these values: docs/detection.md#recipes.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', './glnet_common.py']

# mmdet's epoch loop, resuming inside an epoch after an interruption (docs/clusters.md).
train_cfg = dict(type='ResumableEpochBasedTrainLoop')

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg={{_base_.glnet_paramwise_cfg}})
