from glmix_mm.checkpoint import CheckpointMismatchError, check_file, check_fit

from .hooks import (CheckpointFitHook, CPUAutocastHook, EagerOptimizerStepHook, RNGStateHook,
                    ResumableTrainingHook, SafeCheckpointHook, TrainingInterrupted,
                    autocast_submodules)
from .loops import ResumableEpochBasedTrainLoop, ResumableSampler
from .resume import ResumeError, check_resume_file, is_complete_checkpoint, latest_checkpoint

__all__ = [
    'CPUAutocastHook', 'CheckpointFitHook', 'CheckpointMismatchError', 'EagerOptimizerStepHook',
    'RNGStateHook', 'ResumableEpochBasedTrainLoop', 'ResumableSampler', 'ResumableTrainingHook',
    'ResumeError', 'SafeCheckpointHook', 'TrainingInterrupted', 'autocast_submodules',
    'check_file', 'check_fit', 'check_resume_file', 'is_complete_checkpoint',
    'latest_checkpoint'
]
