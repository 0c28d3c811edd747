"""What differs between the versions glmix_mm supports, in one place.

glmix_mm runs on torch 2.1 (what OpenMMLab's prebuilt mmcv 2.1.0 wheels are built for) up to the
newest release, with numpy 1 or 2, beside whatever transformers a user has. Functions here give
one answer on every version; a feature that an old torch lacks is refused by
:func:`require_torch` with one line naming the version it needs.
"""
import sys
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Optional, Tuple

import torch
from mmengine.utils import digit_version

from .errors import GLMixMMError

#: The oldest torch glmix_mm runs on (also in setup.py's ``install_requires``).
TORCH_FLOOR = (2, 1)
#: ``torch.export.export(..., prefer_deferred_runtime_asserts_over_guards=True)`` with
#: ``Dim`` dynamic shapes (``Dim`` arrived in 2.2, the keyword in 2.9: pytorch/pytorch#160111):
#: the dynamic-shape export of glmix_mm (:mod:`glmix_mm.deploy.onnx_export`).
TORCH_EXPORT_MIN = '2.9'


class UnsupportedTorchError(GLMixMMError, RuntimeError):
    """A feature needs a newer torch than the one installed; the message names the version
    (exit code 2)."""
    exit_code = 2


def torch_version(version: Optional[str] = None) -> Tuple[int, int]:
    """``(major, minor)`` of ``version`` (default: the installed torch), e.g. ``(2, 1)``."""
    release = (version or torch.__version__).split('+')[0].split('.')
    return int(release[0]), int(''.join(c for c in release[1] if c.isdigit()) or 0)


def check_torch_floor() -> None:
    """Refuse, in one line, a torch older than :data:`TORCH_FLOOR` (called at import)."""
    if torch_version() < TORCH_FLOOR:
        raise ImportError(f'glmix_mm needs PyTorch >= {TORCH_FLOOR[0]}.{TORCH_FLOOR[1]} '
                          f'(found {torch.__version__}); upgrade torch.')


def require_torch(minimum: str, feature: str) -> None:
    """Raise :class:`UnsupportedTorchError` if the installed torch is older than ``minimum``.

    Args:
        minimum (str): e.g. ``'2.5'``.
        feature (str): What needs it, for the message (e.g. ``'the dynamo ONNX exporter'``).
    """
    if torch_version() < torch_version(minimum):
        raise UnsupportedTorchError(f'{feature} needs PyTorch >= {minimum} (found '
                                    f'{torch.__version__}); upgrade torch to use it.')


def has_torch(minimum: str) -> bool:
    """Whether the installed torch is at least ``minimum`` (e.g. ``'2.5'``)."""
    return torch_version() >= torch_version(minimum)


# Resolved once, so that dynamo sees torch's own function called (it folds those to True while
# it traces) and no version check runs in a forward pass.
if hasattr(torch.compiler, 'is_compiling'):  # torch >= 2.3
    _dynamo_is_compiling = torch.compiler.is_compiling
else:
    from torch._dynamo import is_compiling as _dynamo_is_compiling
_fx = torch.fx._symbolic_trace
# torch >= 2.5 tells FX's symbolic tracing apart from dynamo's; before, ``is_fx_tracing`` is it.
_fx_is_tracing = getattr(_fx, 'is_fx_symbolic_tracing', _fx.is_fx_tracing)


def is_compiling() -> bool:
    """Whether dynamo (``torch.compile``, ``torch.export``) is tracing the caller."""
    return _dynamo_is_compiling()


def is_fx_tracing() -> bool:
    """Whether ``torch.fx.symbolic_trace`` is tracing the caller."""
    return _fx_is_tracing()


def graph_capture() -> bool:
    """Whether the caller runs under a graph capture rather than eagerly: ``torch.compile`` /
    dynamo, ``torch.export``, both ONNX exporters, ``torch.jit.trace`` / ``script`` or FX.

    A captured graph must serve every input size, so code that makes Python decisions on a
    tensor's size (which a tracer freezes at the example size) asks this first.
    """
    return (is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export() or is_fx_tracing())


def cpu_autocast_enabled() -> bool:
    """Whether CPU autocast is on (``torch.is_autocast_enabled('cpu')`` from torch 2.4,
    ``torch.is_autocast_cpu_enabled()`` before)."""
    return _cpu_autocast_enabled()


if has_torch('2.4'):
    _cpu_autocast_enabled = partial(torch.is_autocast_enabled, 'cpu')
else:
    _cpu_autocast_enabled = torch.is_autocast_cpu_enabled


def cropped_copy(x: torch.Tensor, height, width) -> torch.Tensor:
    """A fresh contiguous tensor holding ``x[:, :height, :width]`` (``x`` is (B, H, W, C)).

    Under symbolic shapes the strides of a cropped view depend on whether anything was cropped,
    which the shape solver would turn into a condition on the input size; a copy made by
    ``narrow_copy`` has strides from its size alone. torch 2.1's AOT autograd has no derivative
    for ``narrow_copy`` (compiled training would fail), so there the crop is cloned instead; the
    dynamic-shape ``torch.export`` that needs the former is refused on that torch anyway.
    """
    if _narrow_copy_crops:
        return torch.narrow_copy(torch.narrow_copy(x, 1, 0, height), 2, 0, width)
    return x[:, :height, :width].clone(memory_format=torch.contiguous_format)


_narrow_copy_crops = has_torch(TORCH_EXPORT_MIN)


#: The first transformers whose ``modeling_utils`` lacks names that MMPretrain 1.2's multimodal
#: models (BLIP, CLIP, LLaVA, ...) import: beside it ``import mmpretrain.models`` fails.
TRANSFORMERS_WITHOUT_MMPRETRAIN_MULTIMODAL = '4.52.0'


def keep_mmpretrain_importable() -> None:
    """Beside transformers >= 4.52, tell MMPretrain that its multimodal models are unavailable.

    MMPretrain imports its multimodal models whenever a transformers >= 4.28 is installed, and
    with a newer transformers those imports fail (``TypeError`` / ``ImportError`` in
    ``mmpretrain/models/multimodal``), taking ``mmpretrain.models``, and with it the Conformer
    blocks, down. MMPretrain has a switch for a missing transformers,
    ``mmpretrain.utils.dependency.WITH_MULTIMODAL``; turned off before ``mmpretrain.models`` is
    imported, MMPretrain registers placeholders for those models (building one asks for the
    multimodal extra) and everything else imports. Called by ``import glmix_mm``; does nothing
    once ``mmpretrain.models`` is imported, or beside an older or no transformers.
    """
    if 'mmpretrain.models' in sys.modules:
        return
    try:
        installed = version('transformers')
    except PackageNotFoundError:
        return
    if digit_version(installed) < digit_version(TRANSFORMERS_WITHOUT_MMPRETRAIN_MULTIMODAL):
        return
    try:
        from mmpretrain.utils import dependency
    except ImportError:  # no MMPretrain: glmix_mm.models says what to install
        return
    dependency.WITH_MULTIMODAL = False
