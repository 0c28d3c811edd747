# What every glmix_mm config shares (tools/train.py also makes the checkpoint hook a
# SafeCheckpointHook and an epoch-based run resumable inside an epoch): the plugin import, random states saved in checkpoints (so
# that --resume continues the same random stream), checkpoints checked against the model when
# loaded (CheckpointFitHook: a file that does not fit is refused, a fine-tuning load_from skips
# only the class-dependent head layers), training that Ctrl-C / SIGTERM stops cleanly with
# atomically written checkpoints and a --resume that finds the newest complete one
# (ResumableTrainingHook, docs/reliability.md), MMEngine's compile option with the optimizer
# update left eager (EagerOptimizerStepHook, docs/benchmarks.md), and the parameters of GLNet that get no
# weight decay: norms (as in the GLNet author's BiFormer recipes), and GLNet's layer scales
# (gamma), learnable slot scales and learned initial slots, which are scales / embeddings too.
custom_imports = dict(imports=['glmix_mm'], allow_failed_imports=False)
custom_hooks = [
    dict(type='RNGStateHook'),
    dict(type='CheckpointFitHook'),
    dict(type='ResumableTrainingHook'),
    dict(type='EagerOptimizerStepHook'),
]
glnet_paramwise_cfg = dict(
    norm_decay_mult=0.,
    custom_keys={
        'norm': dict(decay_mult=0.),
        '.gamma': dict(decay_mult=0.),
        'slot_scale': dict(decay_mult=0.),
        'init_slots': dict(decay_mult=0.),
    })
