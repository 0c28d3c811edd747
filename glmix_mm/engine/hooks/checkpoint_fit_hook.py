"""Refuse checkpoints that do not fit the model where a mismatch is always a mistake
(the rules: :mod:`glmix_mm.checkpoint.fit`)."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from glmix_mm.checkpoint.fit import check_fit, drop_keys, loaded_state_dict
from glmix_mm.registry import register_hook

from ..mmengine_internals import checkpoint_to_load, resumes, trains


@register_hook
class CheckpointFitHook(Hook):
    """Check every checkpoint the runner loads against its model before the weights are set.

    Runs in ``after_load_checkpoint``, which MMEngine's ``Runner.load_checkpoint`` calls after
    reading the file and before loading it into the model. The mode follows what the runner
    does: ``--resume`` -> ``exact`` (a resumed run must continue this very model); training
    with ``load_from`` -> ``finetune``; testing or validating -> ``exact``. See
    :mod:`glmix_mm.checkpoint.fit` for the rules.

    Args:
        allow_partial (bool): Load what fits and warn instead of refusing (``tools/test.py
            --allow-partial``). Defaults to False.
    """
    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: bool = False) -> None:
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        path = checkpoint_to_load(runner)
        source = f'The checkpoint {path}' if path else 'The checkpoint'
        if resumes(runner):
            mode, hint = 'exact', '--resume continues a run of this very config; to start ' \
                'from other weights use load_from instead.'
        elif trains(runner):
            mode, hint = 'finetune', 'Is load_from a checkpoint of this model?'
        else:
            mode, hint = 'exact', ('Is it a checkpoint of this config (same backbone arch, same '
                                   'number of classes)? tools/test.py --allow-partial loads the '
                                   'keys that fit anyway.')
        skipped = check_fit(model, loaded_state_dict(checkpoint), mode, source,
                            self.allow_partial, hint)
        drop_keys(checkpoint, skipped)
