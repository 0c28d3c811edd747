from .amp import CPUAutocastHook, autocast_submodules
from .checkpoint_fit import CheckpointFitHook, CheckpointMismatchError, check_file, check_fit
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
