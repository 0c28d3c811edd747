from .amp import CPUAutocastHook, autocast_submodules
from glmix_mm.checkpoint import CheckpointMismatchError, check_file, check_fit

from .checkpoint_fit import CheckpointFitHook
from .eager_step import EagerOptimizerStepHook
from .hooks import RNGStateHook
from .resumable import ResumableTrainingHook, ResumeError, TrainingInterrupted, latest_checkpoint
from .safe_checkpoint import SafeCheckpointHook, is_complete_checkpoint

__all__ = [
    'CPUAutocastHook', 'CheckpointFitHook', 'CheckpointMismatchError', 'EagerOptimizerStepHook',
    'RNGStateHook',
    'ResumableTrainingHook', 'ResumeError', 'SafeCheckpointHook', 'TrainingInterrupted',
    'autocast_submodules', 'check_file', 'check_fit', 'is_complete_checkpoint', 'latest_checkpoint'
]
