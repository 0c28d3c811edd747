"""glmix_mm/errors.py: every error of ours is a GLMixMMError with its exit code, and still the
built-in exception that Python code caught before."""
import pickle

import pytest

from glmix_mm.analysis.zoo import parse_model
from glmix_mm.checkpoint import (CheckpointLoadError, CheckpointMismatchError,
                                 CheckpointNotFoundError, UnsafeCheckpointError)
from glmix_mm.compat import UnsupportedTorchError
from glmix_mm.engine import ResumeError
from glmix_mm.errors import GLMixMMError, UsageError
from glmix_mm.runner import (BadDatasetError, DatasetNotFoundError, LaunchError,
                             PretrainedNotFoundError)
from glmix_mm.utils import ConfigError


@pytest.mark.parametrize('error, code, builtin', [
    (UsageError, 2, ValueError),
    (ConfigError, 2, ValueError),
    (LaunchError, 2, ValueError),
    (DatasetNotFoundError, 2, FileNotFoundError),
    (BadDatasetError, 2, FileNotFoundError),
    (PretrainedNotFoundError, 2, FileNotFoundError),
    (CheckpointNotFoundError, 2, FileNotFoundError),
    (UnsupportedTorchError, 2, RuntimeError),
    (CheckpointLoadError, 1, RuntimeError),
    (UnsafeCheckpointError, 1, pickle.UnpicklingError),
    (CheckpointMismatchError, 1, RuntimeError),
    (ResumeError, 1, RuntimeError),
])
def test_each_error_carries_its_exit_code(error, code, builtin):
    assert issubclass(error, GLMixMMError) and issubclass(error, builtin)
    assert error.exit_code == code
    assert str(error('the problem; the fix')) == 'the problem; the fix'


def test_usage_errors_of_the_package_are_ours():
    with pytest.raises(UsageError, match="Unknown model 'glnet-5g'"):
        parse_model('glnet-5g')
