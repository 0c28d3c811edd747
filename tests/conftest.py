"""Fixtures and markers shared by the whole suite.

* ``slow``: a test that starts processes (training runs, tools in subprocesses, distributed or
  Slurm jobs) and takes tens of seconds or more. ``pytest -m "not slow" tests`` is the fast tier
  a developer runs in minutes; CI (``make test``) runs everything.
* ``run_tool``: runs a command-line tool of ``tools/`` in this process, as
  ``python tools/<path> ARGS`` would (same ``__main__``, same ``sys.argv``), and returns its exit
  code; its output is what ``capsys`` captures. No subprocess start-up, no ``sys.path`` edit.
"""
import os.path as osp
import runpy
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def pytest_configure(config) -> None:
    config.addinivalue_line(
        'markers', 'slow: starts processes and takes tens of seconds or more (deselect with '
        '-m "not slow" for the fast tier)')


def _run_tool(path: str, *args) -> int:
    script = osp.join(ROOT, 'tools', path)
    argv = sys.argv
    sys.argv = [script, *map(str, args)]
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as exit_:
        code = exit_.code
        return 0 if code is None else code if isinstance(code, int) else 1
    finally:
        sys.argv = argv
    return 0


@pytest.fixture
def run_tool():
    """``run_tool('model_converters/glnet2mm.py', src, dst) -> exit code`` (see the module
    docstring)."""
    return _run_tool
