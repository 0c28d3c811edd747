"""Exporting backbones with dynamic batch, height and width, and checking the exported graphs.

Two ways out of eager PyTorch are covered:

* ONNX, with either of torch's exporters: ``'torchscript'`` (``torch.onnx.export(...,
  dynamo=False)``, the one MMDeploy uses) with ``dynamic_axes``, or ``'dynamo'``
  (``torch.export`` first, then ONNX) with ``dynamic_shapes``;
* :func:`torch.export.export` with dynamic dims (an ``ExportedProgram``).

Either way one exported graph must serve every size: :func:`verify_onnx` and
:func:`verify_program` run it at the sizes given and compare each output with the eager model
(:func:`relative_error`), so that a size-dependent constant baked in at export time shows up as
a wrong result or a failure, not as a silently different model.

onnx and onnxruntime are optional (``pip install -e .[deploy]``); they are imported only where
used. What the installed torch cannot do is refused in one line naming the version it needs
(:data:`TORCH_EXPORT_MIN`, :data:`DYNAMO_ONNX_MIN`; docs/deployment.md has the table).
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from glmix_mm.compat import TORCH_EXPORT_MIN, has_torch, require_torch

Shape = Tuple[int, int, int, int]

EXPORTERS = ('torchscript', 'dynamo')
INPUT_NAME = 'input'
# Default opsets: 17 for the TorchScript exporter (LayerNormalization is native from 17), 18 for
# the dynamo exporter (the opset of torch's ONNX function library; lower ones are converted).
DEFAULT_OPSET = {'torchscript': 17, 'dynamo': 18}
# Range of the dynamic height / width of torch.export graphs. Tracing specialises a size of 1,
# and GLNet's last stage has stride 32: 64 keeps every stage at least 2 pixels wide.
MIN_SIZE = 64
MAX_SIZE = 8192
MAX_BATCH = 1024
#: The dynamo ONNX exporter converts :func:`export_program`'s program, so it needs as much.
DYNAMO_ONNX_MIN = TORCH_EXPORT_MIN
#: ``torch.onnx.export(dynamo=...)``: the keyword exists from 2.5; before, there is only the
#: TorchScript exporter, and the keyword is left out.
ONNX_DYNAMO_KEYWORD_MIN = '2.5'


def size_multiple(model: nn.Module) -> int:
    """The step of the input heights and widths ``model`` accepts in an exported graph.

    GLNet takes any size (1). Conformer needs ``ceil(H / 4)`` and ``ceil(W / 4)`` to be multiples
    of ``patch_size / 4``; the dynamic dims of :func:`dynamic_shapes` express that as multiples of
    ``patch_size``.
    """
    from glmix_mm.models import Conformer
    return model.patch_size if isinstance(model, Conformer) else 1


def output_names(num_outputs: int) -> List[str]:
    """Names of the exported outputs: ``out0``, ``out1``, ..."""
    return [f'out{i}' for i in range(num_outputs)]


def dynamic_axes(names: Sequence[str]) -> Dict[str, Dict[int, str]]:
    """``dynamic_axes`` of the TorchScript exporter: batch, height and width of the input and of
    every output map."""
    axes = {INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'}}
    for name in names:
        axes[name] = {0: 'batch', 2: f'{name}_height', 3: f'{name}_width'}
    return axes


def dynamic_shapes(model: nn.Module,
                   min_size: int = MIN_SIZE,
                   max_size: int = MAX_SIZE) -> Tuple[Dict[int, Any]]:
    """``dynamic_shapes`` for :func:`torch.export.export` of a backbone taking one NCHW image
    batch: dynamic batch, and height / width in ``[min_size, max_size]`` (in steps of
    :func:`size_multiple`)."""
    require_torch(TORCH_EXPORT_MIN, 'dynamic-shape torch.export')
    from torch.export import Dim
    multiple = size_multiple(model)
    batch = Dim('batch', min=1, max=MAX_BATCH)
    if multiple == 1:
        height = Dim('height', min=min_size, max=max_size)
        width = Dim('width', min=min_size, max=max_size)
    else:
        low, high = -(-min_size // multiple), max_size // multiple
        height = multiple * Dim('height_cells', min=low, max=high)
        width = multiple * Dim('width_cells', min=low, max=high)
    return ({0: batch, 2: height, 3: width}, )


def tracing_example(example: torch.Tensor) -> torch.Tensor:
    """The example ``torch.export`` traces: ``example``, with a second image if it has one.

    Tracing specialises dimensions of size 1, so a one-image example would fix the batch.
    """
    return example if example.shape[0] > 1 else torch.cat([example, example.flip(-1)])


def export_program(model: nn.Module,
                   example: torch.Tensor,
                   min_size: int = MIN_SIZE,
                   max_size: int = MAX_SIZE) -> 'torch.export.ExportedProgram':
    """:func:`torch.export.export` of ``model`` in eval mode with dynamic batch, height, width.

    Args:
        model (nn.Module): A backbone taking an NCHW batch.
        example (Tensor): Example input (batch 1 is traced as batch 2, see
            :func:`tracing_example`).
        min_size (int): Smallest height / width the program accepts.
        max_size (int): Largest height / width the program accepts.
    """
    require_torch(TORCH_EXPORT_MIN, 'dynamic-shape torch.export')
    model.eval()
    with torch.no_grad():
        # Guards that hold at every size but that the symbolic solver cannot prove (GLNet-STL's
        # padding to whole patches gives ``(W + (-W) % 4) // 4 * C != 1``-style conditions)
        # become runtime asserts in the graph instead of export errors.
        return torch.export.export(
            model, (tracing_example(example), ),
            dynamic_shapes=dynamic_shapes(model, min_size, max_size),
            prefer_deferred_runtime_asserts_over_guards=True)


def export_onnx(model: nn.Module,
                example: torch.Tensor,
                path: str,
                exporter: str = 'torchscript',
                opset: Optional[int] = None,
                program: Optional['torch.export.ExportedProgram'] = None) -> List[str]:
    """Export ``model`` (eval mode) to the ONNX file ``path`` with dynamic batch, height, width.

    Args:
        model (nn.Module): A backbone taking an NCHW batch and returning a tuple of maps.
        example (Tensor): Example input.
        path (str): Output file; the weights are stored inside it.
        exporter (str): ``'torchscript'`` or ``'dynamo'``.
        opset (int, optional): ONNX opset; :data:`DEFAULT_OPSET` of the exporter by default.
        program (ExportedProgram, optional): For the dynamo exporter, the result of
            :func:`export_program` if already at hand (it is computed otherwise).

    Returns:
        list[str]: The output names.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f'Unknown exporter {exporter!r}; choose one of {EXPORTERS}.')
    if exporter == 'dynamo':
        require_torch(DYNAMO_ONNX_MIN, 'the dynamo ONNX exporter (torch.onnx.export(dynamo=True))')
    opset = opset or DEFAULT_OPSET[exporter]
    model.eval()
    with torch.no_grad():
        names = output_names(len(model(example)))
        if exporter == 'torchscript':
            # The TorchScript exporter is the default before 2.9, the only one before 2.5.
            legacy = dict(dynamo=False) if has_torch(ONNX_DYNAMO_KEYWORD_MIN) else {}
            torch.onnx.export(
                model, (example, ),
                path,
                **legacy,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes=dynamic_axes(names))
        else:
            program = program or export_program(model, example)
            torch.onnx.export(
                program, (tracing_example(example), ),
                path,
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=names)
    return names


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest error relative to the scale of the reference: ``max|a - e| / max|e|``.

    Infinite if the shapes differ or the result is not finite.
    """
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return float('inf')
    scale = max(float(np.abs(expected).max(initial=0.)), np.finfo(np.float32).tiny)
    return float(np.abs(actual - expected).max(initial=0.)) / scale


@dataclass
class Check:
    """The result of running an exported graph at one input shape.

    Attributes:
        shape (tuple): The input shape.
        errors (tuple[float]): :func:`relative_error` of each output (empty if it failed).
        failure (str, optional): Why the graph could not run or returned other shapes.
    """
    shape: Shape
    errors: Tuple[float, ...] = ()
    failure: Optional[str] = None

    @property
    def worst(self) -> float:
        """The largest error over the outputs (infinite for a failure)."""
        return max(self.errors) if self.errors and self.failure is None else float('inf')

    def passes(self, tolerance: float) -> bool:
        return self.worst <= tolerance


def random_input(shape: Shape, seed: int = 0) -> torch.Tensor:
    """A reproducible standard-normal input of ``shape``."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _compare(shape: Shape, outputs: Sequence, reference: Sequence[torch.Tensor]) -> Check:
    if len(outputs) != len(reference):
        return Check(shape, failure=f'{len(outputs)} outputs instead of {len(reference)}')
    for out, ref in zip(outputs, reference):
        if tuple(out.shape) != tuple(ref.shape):
            return Check(shape, failure=f'output of shape {tuple(out.shape)} instead of '
                         f'{tuple(ref.shape)}')
    return Check(
        shape,
        tuple(
            relative_error(np.asarray(out), ref.numpy())
            for out, ref in zip(outputs, reference)))


def _verify(run, model: nn.Module, shapes: Sequence[Shape], seed: int) -> List[Check]:
    model.eval()
    checks = []
    for i, shape in enumerate(shapes):
        x = random_input(shape, seed + i)
        with torch.no_grad():
            reference = model(x)
        try:
            outputs = run(x)
        except Exception as error:  # the graph cannot run at this size: report it
            checks.append(Check(shape, failure=f'{type(error).__name__}: '
                                f'{str(error).splitlines()[0][:300]}'))
            continue
        checks.append(_compare(shape, outputs, reference))
    return checks


def onnx_session(path: str, threads: Optional[int] = None):
    """An ONNX Runtime CPU session of the file ``path``."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def verify_onnx(model: nn.Module,
                path: str,
                shapes: Sequence[Shape],
                seed: int = 0,
                threads: Optional[int] = None) -> List[Check]:
    """Run the ONNX file ``path`` in ONNX Runtime at each of ``shapes`` and compare with
    ``model`` on the same random input (seeds ``seed``, ``seed + 1``, ...)."""
    session = onnx_session(path, threads)
    name = session.get_inputs()[0].name
    return _verify(lambda x: session.run(None, {name: x.numpy()}), model, shapes, seed)


def verify_program(program: 'torch.export.ExportedProgram',
                   model: nn.Module,
                   shapes: Sequence[Shape],
                   seed: int = 0) -> List[Check]:
    """Run ``program`` at each of ``shapes`` and compare with ``model`` (see
    :func:`verify_onnx`)."""
    module = program.module()

    def run(x: torch.Tensor) -> List[np.ndarray]:
        with torch.no_grad():
            return [out.numpy() for out in module(x)]

    return _verify(run, model, shapes, seed)


def sizes_verdict(failed: int, total: int) -> int:
    """Print how many of the ``total`` compared sizes failed; the tool's exit code (1: some)."""
    print('all sizes within tolerance' if not failed else f'{failed} of {total} sizes failed')
    return 1 if failed else 0


def format_checks(checks: Sequence[Check], tolerance: float, title: str = '') -> str:
    """A table: shape, largest relative error per output, worst, verdict."""
    lines = [title] if title else []
    for check in checks:
        shape = 'x'.join(map(str, check.shape))
        if check.failure is not None:
            lines.append(f'  {shape:>16}  FAILED: {check.failure}')
            continue
        errors = '  '.join(f'{e:.1e}' for e in check.errors)
        verdict = 'ok' if check.passes(tolerance) else f'EXCEEDS {tolerance:.0e}'
        lines.append(f'  {shape:>16}  max rel. error per output: {errors}  -> {verdict}')
    return '\n'.join(lines)
