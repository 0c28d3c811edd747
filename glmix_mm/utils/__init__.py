from .cli import (ConfigOptionsAction, add_run_arguments, at_least, parse_run_args,
                  tool_main)
from .config_checks import ConfigError, read_config, unknown_types_refused
from .model_checks import check_neck_channels

__all__ = ['ConfigError', 'ConfigOptionsAction', 'add_run_arguments', 'at_least',
           'check_neck_channels', 'parse_run_args', 'read_config', 'tool_main',
           'unknown_types_refused']
