from .config_checks import ConfigError, read_config, unknown_types_refused
from .model_checks import check_neck_channels
from .runner_helpers import (BadDatasetError, DatasetNotFoundError, apply_common_args,
                             build_model_from_cfg, build_runner, check_datasets,
                             distributed_session, enable_show_dir, setup_cpu_distributed)

__all__ = [
    'BadDatasetError', 'ConfigError', 'DatasetNotFoundError', 'apply_common_args',
    'build_model_from_cfg', 'build_runner', 'check_datasets', 'check_neck_channels',
    'distributed_session', 'enable_show_dir', 'read_config', 'setup_cpu_distributed',
    'unknown_types_refused'
]
