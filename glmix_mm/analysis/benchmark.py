"""Latency, throughput and peak memory of backbones and full models, side by side.

Builds every requested model once in one process, then runs rounds: in each round every model
runs once, in an order rotated from round to round, so that slow drifts of the machine (clock,
other jobs) hit all models alike. Reports the median and the minimum latency, the throughput and
each model's speed relative to a reference model (the first one unless ``--ref``).

Models, by name (``python tools/analysis/benchmark.py --list`` prints them; :mod:`.zoo`):

* ours: ``glnet-{stl,stl-paramslot,4g,9g,16g}`` (``GLNet(arch, out_norm=None)``, the raw stage
  outputs), ``conformer-{ti,s16,s32,b}``;
* baselines: ``swin-t`` (mmdet's Swin-T as in its Mask R-CNN config), ``r50`` (mmdet's
  ResNet-50), ``convnext-t`` (mmpretrain's ConvNeXt-T); all with their four stage outputs;
* ``upstream-glnet-{stl,stl-paramslot,4g,9g,16g}``: the authors' code (``models/glnet.py`` of a
  clone of github.com/rayleizhu/GLMix, given by ``--glmix-repo``; needs ``timm`` and
  ``fairscale``), its four stage outputs. When ours and upstream of one arch run together, ours
  gets upstream's weights and the largest relative difference of their outputs is printed;
* a config file (``configs/maskrcnn_glnet_4g_coco.py``, any mmdet / mmseg / mmpretrain config):
  the full model, built without loading any checkpoint, on synthetic images and ground truth.

Any name takes constructor arguments (config options for a config) after a colon:
``glnet-4g:mhsa_window=14``, ``r50:norm_eval=True,frozen_stages=1``,
``configs/maskrcnn_glnet_4g_coco.py:model.backbone.with_cp=True``. ``--glnet-kwargs`` adds
arguments to every GLNet of ours (names and configs' GLNet backbones).

What one step is: ``--mode infer`` runs the model under ``torch.no_grad()`` in eval mode
(backbones: ``model(x)``; full models: ``mode='predict'``, or ``--infer-mode tensor``);
``--mode train`` runs, in train mode, the forward pass, a scalar loss (backbones: the sum of the
means of the outputs; full models: ``mode='loss'`` with synthetic ground truth, summed by
``parse_losses``) and the backward pass, without an optimizer. ``--amp`` runs the forward pass
under ``torch.autocast``. Data preprocessing of full models (normalisation, padding) is done once
beforehand and not timed.

Peak memory is the memory a step needs beyond the built model and its input. On CUDA it is
measured in the benchmark process (``torch.cuda.max_memory_allocated``, reset before each step,
minus what was allocated before the step). On the CPU the peak resident set size is
process-wide, so ``--memory`` measures each model in a fresh process: resident memory after one
step (``VmHWM``, the high-water mark, reset after building) minus that after building the model
and its input. That first step includes one-off costs (lazily loaded kernels, allocator caches).
On the CPU the report also gives each model's minor page faults per timed step: first touches of
memory fresh from the OS, which large short-lived tensors cause when the allocator returns them
to the OS between steps, and which cost time.

``--compile`` adds, for every model, a twin compiled with ``torch.compile`` (``--compile-backend``,
``--compile-mode``, ``--dynamic``; the same module and weights) that runs in the same alternating
rounds as its eager original, labelled ``MODEL (compiled)``. Its first call (tracing, graph
capture and code generation: the compile time) is timed apart and not among the timed steps;
the report gives that compile time, the graph breaks dynamo met and the speed of the compiled
model relative to its eager twin.

``--profile N`` then runs each model N more steps under the PyTorch profiler and prints its
operator self time per step by kernel class (dense convolutions, depth-wise convolutions,
matmuls, fused attention, everything else) and its ``--top`` operators with their input shapes:
where the time goes, and what two implementations of one model do differently.

Examples: ``tools/analysis/benchmark.py`` and docs/benchmarks.md.
"""
import argparse
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from glmix_mm.errors import GLMixMMError

from .inputs import make_input, parse_kwargs, parse_shape
from .profiling import format_profile, profile_entry
from .report import print_report
from .steps import AMP_DTYPES, build_entries, share_upstream_weights
from .timing import (Result, apply_threads, first_calls, memory_in_subprocess, run_rounds,
                     summarize)
from .zoo import BACKBONES, ModelSpec, backbone_class_and_kwargs, model_choices, parse_model

COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Latency, throughput and peak memory of backbones and full models, run '
        'side by side in one process.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Models: ' + ', '.join(model_choices()) + ', or a config file. Append '
        'constructor arguments (config options for a config) after a colon: '
        'glnet-4g:mhsa_window=14.')
    parser.add_argument('models', nargs='*', metavar='MODEL',
                        help='model names or config files (see below)')
    parser.add_argument('--list', action='store_true', help='print the model names and exit')
    parser.add_argument('--mode', choices=['infer', 'train'], default='infer',
                        help='infer: forward pass without gradients, eval mode; train: forward, '
                        'scalar loss and backward, train mode, no optimizer (default: infer)')
    parser.add_argument('--infer-mode', choices=['predict', 'tensor'], default='predict',
                        help="what full models run in infer mode: 'predict' (with "
                        "post-processing) or 'tensor' (raw head outputs) (default: predict)")
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu',
                        help='where to run (default: cpu)')
    parser.add_argument('--amp', choices=list(AMP_DTYPES), default='none',
                        help='torch.autocast dtype of the forward pass (default: none, fp32)')
    parser.add_argument('--shape', default='1x3x800x1280',
                        help='input batch x channels x height x width (default: 1x3x800x1280)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed rounds before the timed ones (default: 2)')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed rounds; each model runs once per round (default: 10)')
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads (default: torch\'s choice)')
    parser.add_argument('--ref', help='reference model of the speed ratios, as listed '
                        '(default: the first model)')
    parser.add_argument('--memory', action='store_true',
                        help='CPU: measure each model\'s peak memory in a fresh process '
                        '(on CUDA peak memory is always measured)')
    parser.add_argument('--glmix-repo', help='clone of github.com/rayleizhu/GLMix, for the '
                        'upstream-glnet-* models')
    parser.add_argument('--glnet-kwargs', nargs='+', default=[], metavar='KEY=VALUE',
                        help='extra GLNet arguments for every GLNet of ours (names and '
                        'configs), e.g. mhsa_window=14')
    parser.add_argument('--profile', type=int, default=0, metavar='STEPS',
                        help='after timing, run each model STEPS more times under the PyTorch '
                        'profiler and print where its time goes (default: 0, off)')
    parser.add_argument('--top', type=int, default=10,
                        help='operators listed per model by --profile (default: 10)')
    parser.add_argument('--seed', type=int, default=0, help='seed of weights and input')
    parser.add_argument('--compile', action='store_true',
                        help='also time every model compiled with torch.compile, in the same '
                        'alternating rounds; reports compile time (first call), graph breaks and '
                        'the speed relative to eager')
    parser.add_argument('--compile-backend', default='inductor',
                        help='torch.compile backend (default: inductor; eager / aot_eager only '
                        'capture the graph, for checks)')
    parser.add_argument('--compile-mode', choices=COMPILE_MODES,
                        help='torch.compile mode (default: PyTorch\'s, "default")')
    parser.add_argument('--dynamic', action='store_true',
                        help='torch.compile(dynamic=True): symbolic sizes from the first call')
    parser.add_argument('--markdown', action='store_true',
                        help='also print a markdown table with the machine')
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except ValueError as error:
        parser.error(str(error))
    return args


def check_args(args: argparse.Namespace) -> None:
    """Validate the arguments; fills ``args.specs``, ``args.shape_tuple`` and
    ``args.glnet_kwargs_dict``. Raises ``ValueError`` with a message for the user."""
    if args.list:
        args.specs = []
        return
    if not args.models:
        raise ValueError('Name at least one model: ' + ', '.join(model_choices()) +
                         ', or a config file.')
    args.shape_tuple = parse_shape(args.shape)
    args.glnet_kwargs_dict = parse_kwargs(args.glnet_kwargs)
    args.specs = [parse_model(m, args.glmix_repo) for m in args.models]
    labels = [s.label for s in args.specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f'A model is listed twice: {labels}.')
    if (args.compile_mode or args.dynamic) and not args.compile:
        raise ValueError('--compile-mode and --dynamic set how models are compiled: add '
                         '--compile.')
    if args.compile:
        args.specs = [twin for spec in args.specs
                      for twin in (spec, ModelSpec(spec.text, spec.name, spec.kwargs, True))]
    if args.ref is not None:
        matches = [s.label for s in args.specs if args.ref in (s.text, s.label)]
        if not matches:
            raise ValueError(f'--ref {args.ref!r} is not among the models {labels}.')
        args.ref = matches[0]
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda, but torch.cuda.is_available() is False (a CPU build of '
                         f'torch {torch.__version__}, or no GPU visible).')
    for spec in args.specs:
        if spec.name in BACKBONES:
            backbone_class_and_kwargs(spec, args.glnet_kwargs_dict)
    if args.warmup < 0 or args.repeats < 1:
        raise ValueError('--warmup must be >= 0 and --repeats >= 1.')
    if args.profile < 0 or args.top < 1:
        raise ValueError('--profile must be >= 0 and --top >= 1.')
    if args.threads is not None and args.threads < 1:
        raise ValueError('--threads must be >= 1.')



def benchmark(args: argparse.Namespace
              ) -> Tuple[List[Result], Dict[Tuple[str, str], float]]:
    """Build every model of ``args.specs`` (and compile the twins of ``--compile``), share
    upstream weights, alternate the runs, measure the memory; return the rows and the output
    differences of shared-weight pairs."""
    apply_threads(args.threads)
    x = make_input(args.shape_tuple, args.device, args.seed)
    entries = build_entries(args, x)
    diffs = share_upstream_weights(entries, x, args.amp)
    compiles = first_calls(entries, args.device)
    times, peaks, page_faults = run_rounds(entries, args.device, args.warmup, args.repeats)
    for entry in entries if args.profile else []:
        print(format_profile(entry.spec.label, profile_entry(entry, args.device, args.profile),
                             args.profile, args.top, args.device) + '\n')
    if args.memory and args.device == 'cpu':
        peaks = {e.spec.label: memory_in_subprocess(args, e.spec.label) for e in entries}
    ref = args.ref or entries[0].spec.label
    rows = summarize(entries, times, args.shape_tuple[0], ref, peaks, page_faults, compiles)
    return rows, diffs


def main(argv: Optional[Sequence[str]] = None) -> List[Result]:
    """Run the benchmark of the command line ``argv``; the rows of its report.

    Raises:
        GLMixMMError: A config that does not build (:class:`~glmix_mm.utils.ConfigError`), a
            model that fails at this size, missing upstream dependencies: for one line, not a
            traceback (``tools/analysis/benchmark.py``).
    """
    args = parse_args(argv)
    if args.list:
        print('\n'.join(model_choices()))
        return []
    try:
        rows, diffs = benchmark(args)
    except GLMixMMError:
        raise
    except (ValueError, RuntimeError, KeyError, ImportError, OSError) as error:
        raise GLMixMMError(str(error)) from None
    print_report(rows, args.ref or rows[0].label, args, diffs)
    return rows

