"""Where a model's time goes: operator self time from the PyTorch profiler's own table
(``key_averages(group_by_input_shape=True)``), grouped by kernel class."""
from dataclasses import dataclass
from typing import List, Sequence

from .steps import Benchmarked
from .timing import sync_device

# Operators whose own (self) time is a convolution, matrix-multiply or fused-attention kernel.
CONV_OPS = ('aten::mkldnn_convolution', 'aten::cudnn_convolution', 'aten::_slow_conv2d_forward',
            'aten::thnn_conv2d', 'aten::_nnpack_spatial_convolution')
MATMUL_OPS = ('aten::addmm', 'aten::mm', 'aten::bmm', 'aten::baddbmm', 'aten::_addmm_activation')
ATTENTION_PREFIX = 'aten::_scaled_dot_product_'
KERNEL_CLASSES = ('dense convolution', 'depth-wise convolution', 'matmul', 'fused attention',
                  'everything else')


@dataclass
class OperatorTime:
    """Self time of one operator with one set of input shapes, per step."""
    name: str
    shapes: str
    calls: float
    ms: float
    kind: str


def kernel_class(name: str, shapes: Sequence[Sequence[int]]) -> str:
    """Which of :data:`KERNEL_CLASSES` an operator's self time belongs to."""
    if name in CONV_OPS:
        weight = shapes[1] if len(shapes) > 1 else []
        depthwise = len(weight) == 4 and weight[1] == 1 and shapes[0][1] > 1
        return 'depth-wise convolution' if depthwise else 'dense convolution'
    if name in MATMUL_OPS:
        return 'matmul'
    if name.startswith(ATTENTION_PREFIX) and name != 'aten::scaled_dot_product_attention':
        return 'fused attention'
    return 'everything else'


def profile_entry(entry: Benchmarked, device: str, steps: int) -> List[OperatorTime]:
    """Run ``entry`` ``steps`` times under the PyTorch profiler; per-step self time of every
    operator and input shapes (device time on CUDA, CPU time otherwise), largest first."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(steps):
            entry.step()
        sync_device(device)
    rows = []
    for event in prof.key_averages(group_by_input_shape=True):
        us = (getattr(event, 'self_device_time_total', 0)
              if device == 'cuda' else event.self_cpu_time_total)
        if us > 0:
            shapes = [list(s) for s in event.input_shapes or []]
            rows.append(OperatorTime(event.key, str([s for s in shapes if s]), event.count / steps,
                                     us / steps / 1e3, kernel_class(event.key, shapes)))
    return sorted(rows, key=lambda r: -r.ms)


def format_profile(label: str, rows: Sequence[OperatorTime], steps: int, top: int,
                   device: str) -> str:
    """Time per kernel class and the ``top`` operators of one model's profile."""
    total = sum(r.ms for r in rows) or 1.
    clock = 'device' if device == 'cuda' else 'CPU'
    lines = [f'Profile of {label} ({steps} steps; operator self {clock} time per step, '
             f'{total:.1f} ms in all):']
    for kind in KERNEL_CLASSES:
        ms = sum(r.ms for r in rows if r.kind == kind)
        lines.append(f'  {kind:24s} {ms:9.1f} ms  {100 * ms / total:5.1f}%')
    lines.append(f'  top {top} operators (ms per step, calls per step, input shapes):')
    for r in rows[:top]:
        lines.append(f'  {r.ms:9.2f} {r.calls:6.1f}  {r.name}  {r.shapes[:90]}')
    return '\n'.join(lines)

