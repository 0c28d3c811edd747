"""Shared by the tests (importable as ``helpers``: pytest puts ``tests/``, the folder of the root
``conftest.py``, on the path): the repository root (``ROOT``), running the command-line tools of
``tools/`` in this process (``run_tool``, ``run_script``, ``load_tool``: no ``sys.path`` edits) or
in a subprocess (``run_tool_process``), the channel widths a config's neck or head expects, and
the small demo detector of the tool tests."""
import importlib.util
import os
import os.path as osp
import runpy
import socket
import subprocess
import sys
from typing import Optional
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# The demo detector's config (Mask R-CNN, GLNet-4G; the tiny data of tools/make_demo_data.py).
DEMO = osp.join(ROOT, 'configs/demo/maskrcnn_glnet_4g_demo.py')

# The demo detector as the tool tests train it (``demo_options``): the GLNet-STL backbone (12
# blocks), and the neck and heads 64 channels wide instead of 256 (their convolutions are most
# of a training step's time on the CPU).
SMALL_DEMO_DETECTOR = {
    'model.backbone.arch': 'stl', 'model.neck.in_channels': [96, 192, 384, 768],
    'model.neck.out_channels': 64, 'model.rpn_head.in_channels': 64,
    'model.rpn_head.feat_channels': 64, 'model.roi_head.bbox_roi_extractor.out_channels': 64,
    'model.roi_head.bbox_head.in_channels': 64, 'model.roi_head.bbox_head.fc_out_channels': 256,
    'model.roi_head.mask_roi_extractor.out_channels': 64,
    'model.roi_head.mask_head.in_channels': 64, 'model.roi_head.mask_head.conv_out_channels': 64,
}


def cfg_options(options: dict) -> list:
    """``--cfg-options`` arguments (``KEY=VALUE``) for a dict of config options."""
    return [f"{key}={str(value).replace(' ', '')}" for key, value in options.items()]


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
    return run_script(osp.join('tools', path), *args)


def run_script(path: str, *args) -> int:
    """:func:`run_tool` for any script of the repository (``path`` from its root)."""
    script = osp.join(ROOT, path)
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


def run_tool_process(*args,
                     cwd: Optional[str] = ROOT,
                     env: Optional[dict] = None,
                     timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in a subprocess (ARGS: a tool's path from the repository root, such as
    ``tools/train.py``, and its arguments; or ``-m torch.distributed.run ...``), in ``cwd``, with
    ``env`` (``None``: this process's environment), and return the finished process, its output
    captured as text. For what must run apart from this process (training runs, several
    processes); the in-process :func:`run_tool` is much faster for the rest."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    """A TCP port of 127.0.0.1 free now (for a torchrun or ``dist_train.sh`` master)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def gloo_worker_threads() -> int:
    """Worker threads of gloo process groups alive in this process (named in /proc; torch 2.1.2
    leaves them unnamed, so there it counts none)."""
    names = []
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/comm') as f:
                names.append(f.read().strip())
        except OSError:  # a thread that just ended
            pass
    return names.count('pt_gloo_runloop')


def truncate_file(path: str) -> None:
    """Keep the first 300 characters of a text file: a download or a copy cut short."""
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:300])


def decoder_in_channels(cfg) -> list:
    """What the first module after the backbone expects from it."""
    if cfg.model.get('neck') and 'in_channels' in cfg.model.neck:
        return list(cfg.model.neck.in_channels)
    if cfg.model.get('decode_head'):
        return list(cfg.model.decode_head.in_channels)
    return [cfg.model.head.in_channels]


def backbone_out_channels(backbone) -> list:
    """Output widths of a GLNet / Conformer (``out_channels``) or an OpenMMLab ResNet."""
    if hasattr(backbone, 'out_channels'):
        return list(backbone.out_channels)
    expansion = getattr(backbone, 'expansion', None) or backbone.block.expansion
    return [expansion * 64 * 2**i for i in backbone.out_indices]
