from .checkpoint_fit_hook import CheckpointFitHook
from .cpu_autocast_hook import CPUAutocastHook, autocast_submodules
from .eager_optimizer_step_hook import EagerOptimizerStepHook
from .resumable_training_hook import ResumableTrainingHook, TrainingInterrupted
from .rng_state_hook import RNGStateHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = [
    'CPUAutocastHook', 'CheckpointFitHook', 'EagerOptimizerStepHook', 'RNGStateHook',
    'ResumableTrainingHook', 'SafeCheckpointHook', 'TrainingInterrupted', 'autocast_submodules'
]
