"""``make_runner``: a tiny MMEngine Runner (three linear layers named like a detector's parts, 8
samples) to test the glmix_mm hooks in-process, in about a second per run."""
import pytest
from toy_runner import toy_runner  # this folder, which pytest puts on sys.path


@pytest.fixture
def make_runner(tmp_path):
    """``make_runner(**kwargs)``: :func:`toy_runner.toy_runner` in ``tmp_path/work`` unless
    ``work_dir`` is given."""

    def make(work_dir=None, **kwargs):
        return toy_runner(work_dir or str(tmp_path / 'work'), **kwargs)

    return make
