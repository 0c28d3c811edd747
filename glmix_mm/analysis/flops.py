"""Parameters and FLOPs of a GLNet / Conformer backbone, or of a whole model from a config.

What is counted: MMEngine's analyzer (:class:`mmengine.analysis.FlopAnalyzer`) traces one forward
pass with ``torch.jit`` and adds up a cost per traced operator, counting one multiply-add as one
FLOP, the convention of the ``get_flops`` tools of MMDetection, MMSegmentation and MMPretrain
(and of fvcore). Convolutions, linear layers, matrix products, norms, upsampling and adaptive
pooling have handles there. Two additions:

* ``aten::scaled_dot_product_attention`` (fused attention, which GLNet uses in every block and
  Conformer's transformer branch uses through MMPretrain) has no handle in MMEngine, so its cost
  would silently be 0. Here it counts the multiply-adds of ``q @ k^T`` plus ``attn @ v``:
  ``batch * Lq * Lk * (d + dv)``; the softmax, like every elementwise op, is not counted.
* Pure data movement (``unflatten``, ``expand_as``, ...) is declared free, so that the list of
  skipped operators printed with every count holds only ops that compute without a handle:
  elementwise ops (additions, activations, L2 normalisation), max pooling and the detectors'
  RoIAlign and NMS. They are left out, as the OpenMMLab tools leave them out.

Published figures: the GLNet authors counted with fvcore, attention products included; the
MMPretrain model zoo's Conformer figures leave attention out (MMPretrain's own tool, MMEngine's
analyzer without an attention handle, skips it). Every count here is given with and without
attention, and ``--all-archs`` compares each arch with its published figure counted alike. Our
GLMix blocks compute what the authors' code computes: the slot assignment logits once, shared by
clustering and dispatching (3 * S * L * C multiply-adds for S slots, L pixels, C channels, plain
matrix products); "attention" here is the fused attention of the MHSA blocks and of the slots.

Models are built from their configs without ``init_weights()``, so no checkpoint is read.
Detectors are traced with ``mode='tensor'`` on a synthetic image and synthetic metainfo (the
RPN's proposals of random weights go to the RoI head: their number, printed, changes the
count); segmentors with ``mode='tensor'`` (one whole-image forward of backbone, neck and decode
head, no sliding window, no auxiliary head); classifiers with ``mode='tensor'`` (logits).
"""
import argparse
import inspect
import math
import os.path as osp
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.analysis.print_helper import complexity_stats_table

from glmix_mm.errors import UsageError
from glmix_mm.models import GLNet
from glmix_mm.utils import ConfigOptionsAction, tool_main

from .inputs import detection_samples, make_input, parse_shape
from .zoo import BACKBONES, OUR_ARCHS, ModelSpec, Published, build_backbone, build_full_model

SDPA_OP = 'aten::scaled_dot_product_attention'
ATTENTION_KEY = 'scaled_dot_product_attention'  # its name in the analyzer's per-op counts

# Operators that only move or view data: declared free so they are not listed as skipped.
FREE_OPS = ('aten::unflatten', 'aten::expand_as', 'aten::clone', 'aten::pad', 'aten::repeat',
            'aten::new_ones', 'aten::ones_like', 'aten::empty_like', 'aten::lift_fresh',
            'aten::scalar_tensor', 'aten::tensor', 'aten::meshgrid', 'aten::linspace',
            'aten::view_as', 'aten::reshape_as', 'aten::flip', 'aten::split_with_sizes',
            'aten::unsqueeze_copy', 'aten::alias', 'aten::detach_', 'aten::resolve_conj',
            'aten::resolve_neg', 'aten::_assert_tensor_metadata', 'aten::fill_',
            'aten::zero_', 'aten::new_tensor', 'aten::nonzero_numpy', 'aten::feature_dropout')

# Default input size (H, W) of a config's model, by its default scope.
DEFAULT_CONFIG_SHAPES = {'mmdet': (800, 1280), 'mmseg': (512, 2048), 'mmpretrain': (224, 224)}
# An arch is counted as the detection and segmentation configs build it: GLNet with its output
# norms (the analysis zoo builds it without, for the benchmarks).
WITH_OUTPUT_NORMS = dict(out_norm=inspect.signature(GLNet).parameters['out_norm'].default)


@dataclass
class Complexity:
    """What one analysis found.

    Args:
        name (str): Model description.
        input_shape (tuple[int]): Shape of the traced input, ``(N, C, H, W)``.
        params (int): Parameters of the analysed module.
        flops (int): FLOPs (multiply-adds) of the traced forward, whole batch.
        attention_flops (int): The part of ``flops`` spent in fused attention.
        by_operator (Counter): FLOPs per operator.
        by_module (Counter): FLOPs per module name (``''`` is the whole model).
        skipped_ops (Counter): Operators without a FLOP handle, and how often they ran.
        notes (list[str]): Facts about the trace (padding, number of RoIs).
        table (str, optional): Per-module breakdown.
    """
    name: str
    input_shape: Tuple[int, ...]
    params: int
    flops: int
    attention_flops: int
    by_operator: Counter
    by_module: Counter
    skipped_ops: Counter
    notes: List[str] = field(default_factory=list)
    table: Optional[str] = None

    @property
    def flops_without_attention(self) -> int:
        return self.flops - self.attention_flops


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOP handle of ``aten::scaled_dot_product_attention``: MACs of ``q @ k^T`` and ``attn @ v``.

    With ``q`` of shape ``(..., Lq, d)``, ``k`` of shape ``(..., Lk, d)`` and ``v`` of shape
    ``(..., Lk, dv)``, the batch dimensions ``...`` broadcast to those of the output
    ``(..., Lq, dv)``, so the count is ``prod(batch) * Lq * Lk * (d + dv)``. Scaling, masking and
    the softmax are elementwise and not counted, like every elementwise op.

    Args:
        inputs (list[torch._C.Value]): Traced inputs: query, key, value, then options.
        outputs (list[torch._C.Value]): Traced outputs: the attention result.

    Returns:
        int: The number of multiply-adds.
    """
    query, key, value = (get_shape(v) for v in inputs[:3])
    out = get_shape(outputs[0])
    batch = math.prod(out[:-2])
    return batch * query[-2] * key[-2] * (query[-1] + value[-1])


def make_flop_analyzer(model: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> FlopAnalyzer:
    """MMEngine's analyzer with the attention handle, free data-movement ops and no warnings."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle(SDPA_OP, sdpa_flop_jit)
    analyzer.set_op_handle(**{op: None for op in FREE_OPS})
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


def analyze(model: nn.Module, inputs: Tuple[torch.Tensor, ...], name: str,
            depth: int = 0) -> Complexity:
    """Trace ``model(*inputs)`` once and count its parameters and FLOPs.

    Args:
        model (nn.Module): The module, in eval mode.
        inputs (tuple[torch.Tensor]): Positional inputs of its forward.
        name (str): Description for the report.
        depth (int): Depth of the per-module breakdown; 0 for none.

    Returns:
        Complexity: The counts.
    """
    analyzer = make_flop_analyzer(model, inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            flops = analyzer.total()
        except ValueError as error:  # e.g. an input size the model cannot process
            raise UsageError(f'the model rejected the input: {error}') from None
    by_operator = analyzer.by_operator()
    table = complexity_stats_table(analyzer, max_depth=depth,
                                   show_param_shapes=False) if depth > 0 else None
    return Complexity(
        name=name,
        input_shape=tuple(inputs[0].shape),
        params=parameter_count(model)[''],
        flops=int(flops),
        attention_flops=int(by_operator.get(ATTENTION_KEY, 0)),
        by_operator=by_operator,
        by_module=analyzer.by_module(),
        skipped_ops=analyzer.unsupported_ops(),
        table=table)


def image_size(values: Optional[Sequence[int]],
               default: Optional[Tuple[int, int]] = None) -> Optional[Tuple[int, int]]:
    """``[S]`` -> ``(S, S)``, ``[H, W]`` -> ``(H, W)``; None -> ``default``."""
    if values is None:
        return default
    try:
        hw = parse_shape('x'.join(map(str, values)), lengths=(1, 2))
    except ValueError:
        raise UsageError(f'--shape takes one or two positive integers (S for SxS, or H W), '
                             f'got {" ".join(map(str, values))}.') from None
    return (hw[0], hw[-1])


def image_batch(batch: int, hw: Tuple[int, int], seed: int = 0) -> torch.Tensor:
    """A reproducible random ``(batch, 3, H, W)`` input."""
    if batch <= 0:
        raise UsageError(f'--batch must be a positive integer, got {batch}.')
    return make_input((batch, 3, *hw), 'cpu', seed)


def build_arch(name: str) -> nn.Module:
    """Build the backbone of one of our archs (:data:`~glmix_mm.analysis.zoo.OUR_ARCHS`, any
    case), randomly initialised, in eval mode."""
    name = name.lower()
    if name not in OUR_ARCHS:
        raise UsageError(f'Unknown arch {name!r}; choose one of: {", ".join(OUR_ARCHS)}.')
    torch.manual_seed(0)
    return build_backbone(ModelSpec(name, name), WITH_OUTPUT_NORMS).eval()


def arch_complexity(name: str, hw: Tuple[int, int] = (224, 224), batch: int = 1,
                    depth: int = 0) -> Complexity:
    """Parameters and FLOPs of the backbone of an arch (default constructor arguments)."""
    model = build_arch(name)
    return analyze(model, (image_batch(batch, hw), ), name.lower(), depth)


def size_divisor(model: nn.Module) -> int:
    """The multiple the model's data preprocessor pads test images to (1 if none)."""
    preprocessor = getattr(model, 'data_preprocessor', None)
    divisor = getattr(preprocessor, 'pad_size_divisor', None)
    test_cfg = getattr(preprocessor, 'test_cfg', None) or {}
    divisor = divisor or test_cfg.get('size_divisor') or getattr(preprocessor, 'size_divisor',
                                                                 None)
    return int(divisor or 1)


def is_detector(model: nn.Module) -> bool:
    """Whether ``model`` is an MMDetection detector."""
    try:
        from mmdet.models.detectors import BaseDetector
    except ImportError:  # pragma: no cover - mmdet is installed with this package
        return False
    return isinstance(model, BaseDetector)


def count_rois(model: nn.Module) -> Tuple[Dict[str, int], list]:
    """Record how many RoIs each RoI extractor of ``model`` receives.

    Returns:
        tuple: ``{extractor name: number of RoIs}`` (filled during the forward pass) and the hook
        handles, to remove afterwards.
    """
    from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
    rois, handles = {}, []
    for name, module in model.named_modules():
        if isinstance(module, BaseRoIExtractor):

            def record(_module, args, name=name):
                rois[name] = rois.get(name, 0) + int(args[1].shape[0])

            handles.append(module.register_forward_pre_hook(record))
    return rois, handles


def config_complexity(path: str,
                      hw: Optional[Tuple[int, int]] = None,
                      batch: int = 1,
                      backbone_only: bool = False,
                      cfg_options: Optional[dict] = None,
                      depth: int = 2) -> Complexity:
    """Parameters and FLOPs of the model of a config (or of its backbone alone).

    Args:
        path (str): Config file.
        hw (tuple[int], optional): Input height and width; defaults by the config's scope
            (:data:`DEFAULT_CONFIG_SHAPES`). Padded up like the data preprocessor pads.
        batch (int): Images per batch.
        backbone_only (bool): Count ``model.backbone`` only.
        cfg_options (dict, optional): Overrides merged into the config.
        depth (int): Depth of the per-module breakdown; 0 for none.

    Returns:
        Complexity: The counts.
    """
    torch.manual_seed(0)
    model, scope = build_full_model(ModelSpec(path, path, dict(cfg_options or {})))
    model.eval()
    hw = hw or DEFAULT_CONFIG_SHAPES[scope]
    divisor = size_divisor(model)
    pad_hw = tuple(math.ceil(s / divisor) * divisor for s in hw)
    inputs = image_batch(batch, pad_hw)
    name = osp.splitext(osp.basename(path))[0]
    notes = []
    if pad_hw != tuple(hw):
        notes.append(f'input {hw[0]}x{hw[1]} padded to {pad_hw[0]}x{pad_hw[1]} (the data '
                     f'preprocessor pads to multiples of {divisor})')
    if backbone_only:
        return analyze(model.backbone, (inputs, ), f'{name} (backbone)', depth)

    detector = is_detector(model)
    rois, handles = count_rois(model) if detector else ({}, [])
    samples = detection_samples(batch, tuple(hw), pad_hw) if detector else None
    auxiliary = getattr(model, 'auxiliary_head', None)
    if auxiliary is not None:
        aux_params = parameter_count(auxiliary)['']
        notes.append(f'params include auxiliary_head ({aux_params / 1e6:.2f}M, used in training '
                     'only, not run here)')
    model.forward = partial(model.forward, data_samples=samples, mode='tensor')
    try:
        result = analyze(model, (inputs, ), name, depth)
    finally:
        for handle in handles:
            handle.remove()
    notes += [f'{extractor} received {n} RoIs' for extractor, n in rois.items()]
    if rois:
        notes.append('RoIs are the RPN proposals of a randomly initialised model on a random '
                     'image; the RoI head costs change with their number')
    result.notes = notes + result.notes
    return result


def relative_difference(result: Complexity, published: Published) -> float:
    """(our count - published) / published, our count taken under the published convention."""
    ours = result.flops if published.with_attention else result.flops_without_attention
    return ours / 1e9 / published.gflops - 1


def all_archs_markdown(results: Dict[str, Complexity]) -> str:
    """The README table: every arch at 224x224 with its published figure.

    The figure compared with the published one (with or without attention, as published) is in
    bold.
    """
    lines = [
        '| arch | params | GFLOPs | GFLOPs without attention | published GFLOPs | published by '
        '| difference |', '|---|---|---|---|---|---|---|'
    ]
    for name, result in results.items():
        published = BACKBONES[name].published
        total, without = f'{result.flops / 1e9:.2f}', f'{result.flops_without_attention / 1e9:.2f}'
        if published.with_attention:
            total = f'**{total}**'
        else:
            without = f'**{without}**'
        lines.append(f'| `{name}` | {result.params / 1e6:.2f}M | {total} | {without} | '
                     f'{published.gflops} | {published.source} | '
                     f'{100 * relative_difference(result, published):+.1f}% |')
    return '\n'.join(lines)


def format_skipped(skipped: Counter) -> str:
    """``op xN, ...`` for the operators that ran without a FLOP handle."""
    if not skipped:
        return 'none'
    return ', '.join(f'{op.replace("aten::", "")} x{n}' for op, n in skipped.most_common())


def format_report(result: Complexity) -> str:
    """Summary table, notes, skipped operators and the optional breakdown of one model."""
    shape = 'x'.join(map(str, result.input_shape))
    rows = [('model', 'input shape', 'params', 'GFLOPs', 'of which attention'),
            (result.name, shape, f'{result.params / 1e6:.2f}M', f'{result.flops / 1e9:.3f}',
             f'{result.attention_flops / 1e9:.3f}')]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        '  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in rows
    ]
    if result.input_shape[0] > 1:
        lines.append(f'per image: {result.flops / result.input_shape[0] / 1e9:.3f} GFLOPs')
    lines += [f'note: {note}' for note in result.notes]
    lines.append('not counted (no FLOP handle; elementwise, pooling or non-arithmetic ops): ' +
                 format_skipped(result.skipped_ops))
    if result.table:
        lines += ['', result.table]
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs (one multiply-add = one FLOP) of a backbone or of '
        'the model of a config, counted with MMEngine\'s analyzer plus fused attention.')
    parser.add_argument('config', nargs='?', help='config of a detector, segmentor or '
                        'classifier (e.g. configs/maskrcnn_glnet_4g_coco.py)')
    parser.add_argument('--arch',
                        help=f'count a backbone instead: one of {", ".join(OUR_ARCHS)}')
    parser.add_argument('--all-archs', action='store_true',
                        help='every arch at 224x224 against its published figure (markdown)')
    parser.add_argument('--shape', nargs='+', metavar='S',
                        help='input size: S (SxS) or H W (also HxW); default 224 for --arch, '
                        'for a config 800 1280 (mmdet), 512 2048 (mmseg), 224 (mmpretrain)')
    parser.add_argument('--batch', type=int, default=1, help='images per batch (default 1)')
    parser.add_argument('--backbone-only', action='store_true',
                        help='with a config: count model.backbone only')
    parser.add_argument('--depth', type=int, default=2,
                        help='depth of the per-module breakdown (default 2; 0 for none)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptionsAction,
                        help='override config entries, e.g. model.backbone.arch=9g')
    args = parser.parse_args(argv)
    if args.shape is not None:
        sides = [side for value in args.shape for side in value.lower().split('x')]
        if not all(side.strip().isdigit() for side in sides):
            parser.error(f'--shape takes one or two positive integers (S for SxS, or H W, or '
                         f'HxW), got {" ".join(args.shape)!r}')
        args.shape = [int(side) for side in sides]
    if (args.config is not None) + (args.arch is not None) + args.all_archs != 1:
        parser.error('give exactly one of: a config, --arch ARCH, --all-archs')
    if args.config is None and (args.backbone_only or args.cfg_options):
        parser.error('--backbone-only and --cfg-options apply to a config only')
    if args.all_archs and (args.shape or args.batch != 1):
        parser.error('--all-archs counts at 224x224, batch 1; drop --shape / --batch')
    return args


def run(args: argparse.Namespace) -> str:
    """Do what the arguments ask and return the report."""
    if args.all_archs:
        results = {name: arch_complexity(name) for name in OUR_ARCHS}
        return ('Every arch at 224x224, batch 1, backbone as built by --arch. The difference '
                'compares the figure in bold with the published one, counted alike:\n\n' +
                all_archs_markdown(results))
    if args.arch is not None:
        if args.arch.lower() not in OUR_ARCHS:  # before the shape, to name the real problem first
            build_arch(args.arch)
        hw = image_size(args.shape, (224, 224))
        return format_report(arch_complexity(args.arch, hw, args.batch, args.depth))
    hw = image_size(args.shape)
    return format_report(
        config_complexity(args.config, hw, args.batch, args.backbone_only, args.cfg_options,
                          args.depth))


@tool_main
def main(argv: Optional[Sequence[str]] = None) -> int:
    print(run(parse_args(argv)))
    return 0
