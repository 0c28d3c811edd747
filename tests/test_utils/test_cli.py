"""glmix_mm/utils/cli.py: tool_main, the one handler of the tools' errors."""
import pytest

from glmix_mm.checkpoint import CheckpointLoadError
from glmix_mm.errors import GLMixMMError, UsageError
from glmix_mm.utils import tool_main


def failing(error):

    def main(argv=None):
        raise error

    return main


@pytest.mark.parametrize('error, code', [
    (UsageError('--size: must be positive'), 2),
    (CheckpointLoadError('x.pth: truncated'), 1),
    (GLMixMMError('refused'), 1),
])
def test_an_error_of_ours_is_one_line_and_its_code(capsys, error, code):
    assert tool_main(failing(error))(['x']) == code
    captured = capsys.readouterr()
    assert captured.err == f'error: {error}\n' and captured.out == ''


def test_the_exit_code_of_main_passes_through():
    assert tool_main(lambda argv=None: 3)() == 3


def test_a_missing_optional_dependency_names_the_install(capsys):
    main = tool_main(install_hint='pip install -e ".[deploy]"')(
        failing(ImportError("No module named 'onnx'")))
    assert main() == 2
    assert capsys.readouterr().err == ("error: No module named 'onnx'; pip install -e "
                                       '".[deploy]"\n')


def test_other_errors_are_not_hidden():
    """A bug is not a user's mistake: its traceback stays (and an ImportError without a hint)."""
    with pytest.raises(KeyError):
        tool_main(failing(KeyError('bug')))()
    with pytest.raises(ImportError):
        tool_main(failing(ImportError('x')))()
