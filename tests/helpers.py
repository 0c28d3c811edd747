"""Running and loading the command-line tools of ``tools/`` from tests, in this process and
without ``sys.path`` edits (importable as ``helpers``: pytest puts ``tests/``, the folder of the
root ``conftest.py``, on the path)."""
import os.path as osp
import runpy
import sys
from types import SimpleNamespace

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(path: str) -> SimpleNamespace:
    """The functions of ``tools/<path>``, without running its ``__main__`` part."""
    return SimpleNamespace(**runpy.run_path(osp.join(ROOT, 'tools', path)))


def run_tool(path: str, *args) -> int:
    """Run ``tools/<path> ARGS`` as ``python`` would (same ``__main__``, same ``sys.argv``) and
    return its exit code; its output goes where ``capsys`` captures it."""
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
