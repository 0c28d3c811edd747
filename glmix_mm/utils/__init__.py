from .runner_helpers import (DatasetNotFoundError, apply_common_args, build_model_from_cfg,
                             check_datasets, distributed_session, enable_show_dir,
                             setup_cpu_distributed)

__all__ = ['DatasetNotFoundError', 'apply_common_args', 'build_model_from_cfg',
           'check_datasets', 'distributed_session', 'enable_show_dir',
           'setup_cpu_distributed']
