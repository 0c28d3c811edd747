"""Running and loading the command-line tools of ``tools/`` from tests, in this process and
without ``sys.path`` edits (importable as ``helpers``: pytest puts ``tests/``, the folder of the
root ``conftest.py``, on the path)."""
import importlib.util
import os.path as osp
import runpy
import sys
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(path: str) -> ModuleType:
    """``tools/<path>`` as a module (its ``__main__`` part not run), under a name of its own
    (``tool_<path>``: ``tools/test.py`` is not the ``test`` package); setting its attributes
    (``monkeypatch.setattr``) changes what its functions see."""
    name = 'tool_' + path.replace('/', '_')[:-len('.py')]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


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
