"""What the command-line tools do with a config before and around MMEngine's Runner: apply
their options (:mod:`.options`), check the datasets (:mod:`.dataset_checks`) and the
pretrained weights (:mod:`.weight_checks`), start and end a distributed run (:mod:`.launch`)
and build the model or runner (:mod:`.build`)."""
from .build import build_model_from_cfg, build_runner
from .dataset_checks import BadDatasetError, DatasetNotFoundError, check_datasets
from .launch import (LaunchError, check_launch_environment, distributed_session,
                     end_distributed, setup_distributed)
from .options import (SAFETY_HOOKS, add_safety_hooks, apply_common_args, enable_amp,
                      enable_show_dir, use_resumable_loop, use_safe_checkpoint_hook)
from .weight_checks import PretrainedNotFoundError, check_pretrained_weights

__all__ = [
    'SAFETY_HOOKS', 'BadDatasetError', 'DatasetNotFoundError', 'LaunchError',
    'PretrainedNotFoundError', 'add_safety_hooks', 'apply_common_args', 'build_model_from_cfg',
    'build_runner', 'check_datasets', 'check_launch_environment', 'check_pretrained_weights',
    'distributed_session', 'enable_amp', 'enable_show_dir', 'end_distributed',
    'setup_distributed', 'use_resumable_loop', 'use_safe_checkpoint_hook'
]
