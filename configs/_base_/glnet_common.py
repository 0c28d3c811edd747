# What every glmix_mm config shares: the plugin import; the glmix_mm hooks every run needs
# (glmix_mm.runner.SAFETY_HOOKS, the one list, which tools/train.py and tools/test.py also add to
# any config that lacks them): random states saved in checkpoints (RNGStateHook: --resume
# continues the same random stream), checkpoints checked against the model when loaded
# (CheckpointFitHook: a file that does not fit is refused, a fine-tuning load_from skips only
# the class-dependent head layers), training that Ctrl-C / SIGTERM stops cleanly with a
# --resume that finds the newest complete checkpoint (ResumableTrainingHook,
# docs/reliability.md), MMEngine's compile option with the optimizer update left eager
# (EagerOptimizerStepHook, docs/benchmarks.md); and the parameters of GLNet that get no weight
# decay: norms (as in the GLNet author's BiFormer recipes), and GLNet's layer scales (gamma),
# learnable slot scales and learned initial slots, which are scales / embeddings too.
# (tools/train.py also makes the checkpoint hook a SafeCheckpointHook, whose checkpoints are
# written atomically, and an epoch-based run resumable inside an epoch.)
custom_imports = dict(imports=['glmix_mm'], allow_failed_imports=False)
# (__import__, not an import statement: MMEngine reads a config that imports a package with
# `import` / `from` as a new-style "lazy import" config, which our configs' bases are not)
custom_hooks = [
    dict(type=name)
    for name in __import__('glmix_mm.runner', fromlist=['SAFETY_HOOKS']).SAFETY_HOOKS
]
glnet_paramwise_cfg = dict(
    norm_decay_mult=0.,
    custom_keys={
        'norm': dict(decay_mult=0.),
        '.gamma': dict(decay_mult=0.),
        'slot_scale': dict(decay_mult=0.),
        'init_slots': dict(decay_mult=0.),
    })
