"""GPU report: GLNet-4G / 9G against Swin-T, ResNet-50 and ConvNeXt-T, eager and compiled.

One markdown table (printed, and written to ``--out``) of the backbones of
tools/analysis/benchmark.py (:mod:`glmix_mm.analysis`) under bf16 autocast: inference and a
training step (forward, scalar loss, backward) at 64x3x224x224 and 2x3x800x1280; for each model its eager latency, throughput,
speed relative to eager Swin-T and peak memory, whether a step under fp16 autocast stays finite
(outputs, loss and gradients), and for its ``torch.compile`` twin (inductor) the compile time,
the graph breaks and the speed relative to eager, timed in rounds alternating with the eager
model.

Meant to be run by ``dev/gpu_report.sh``, which first installs the OpenMMLab wheels
where they are missing. It keeps to a time budget (``--budget-s``, 8 minutes by default, counted
from ``--started-at``): every eager measurement runs first (seconds), then the compiled twins
one at a time, most wanted first, each only while the budget still holds its estimated compile
time; those left out are listed under the table. The table file is rewritten after every run,
so a run stopped from outside still leaves what it measured.

``--dry-run`` runs the same steps on the CPU with tiny inputs, one timed round and the ``eager``
compile backend (graph capture without code generation): a check of the script, not a
measurement.

mmcv-lite (mmcv without its compiled ops) is enough: the backbones use no mmcv op, but
``mmdet.models`` imports ``mmcv.ops`` at import time, so where ``mmcv._ext`` is missing
:func:`allow_mmcv_lite` puts a stand-in in its place whose every function raises a clear error.
"""
import argparse
import importlib.util
import sys
import time
import types
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence

MODELS = ('glnet-4g', 'glnet-9g', 'swin-t', 'r50', 'convnext-t')
REF = 'swin-t'
# Order of the compiled runs, most wanted first: GLNet-4G and the reference at every case, then
# the other baselines, then GLNet-9G.
COMPILE_ORDER = ('glnet-4g', 'swin-t', 'r50', 'convnext-t', 'glnet-9g')
# Assumed compile seconds (inductor, one step) before any was measured in this run.
DEFAULT_COMPILE_S = {'infer': 60., 'train': 150.}
MARGIN_S = 15.  # kept free at the end of the budget: writing the table, leaving


class Case(NamedTuple):
    """One measured setting: ``mode`` (``infer`` / ``train``) at ``shape`` (NxCxHxW)."""
    mode: str
    shape: str

    @property
    def name(self) -> str:
        """``infer-224``, ``train-800``, ...: the mode and the input height."""
        return f'{self.mode}-{self.shape.split("x")[2]}'


CASES = (Case('infer', '64x3x224x224'), Case('train', '64x3x224x224'),
         Case('infer', '2x3x800x1280'), Case('train', '2x3x800x1280'))
CASE_NAMES = [c.name for c in CASES]
DRY_SHAPES = {'64x3x224x224': '2x3x64x64', '2x3x800x1280': '1x3x64x96'}


def allow_mmcv_lite() -> bool:
    """Where mmcv's compiled ops (``mmcv._ext``) are missing (mmcv-lite), register a stand-in
    module so that ``mmcv.ops`` and the mmdet / mmpretrain model packages import; calling any
    op raises a ``RuntimeError`` naming it. Returns whether the stand-in was needed."""
    if 'mmcv._ext' in sys.modules:
        return False
    try:
        import mmcv  # noqa: F401
    except ImportError:  # no mmcv at all: its own import error comes later, clearer
        return False
    try:
        if importlib.util.find_spec('mmcv._ext') is not None:
            return False
    except ImportError:
        pass
    ext = types.ModuleType('mmcv._ext')
    ext.__doc__ = 'Stand-in for the compiled ops that mmcv-lite lacks (dev/gpu_report.py).'

    def __getattr__(name: str):
        if name.startswith('__'):
            raise AttributeError(name)

        def missing(*args, **kwargs):
            raise RuntimeError(f'mmcv.ops {name} needs mmcv with compiled ops; this is '
                               'mmcv-lite (install mmcv with its ops to use it).')
        return missing

    ext.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules['mmcv._ext'] = ext
    return True


@dataclass
class Row:
    """One line of the report: a model, eager or compiled, in one case."""
    case: Case
    model: str
    compiled: bool
    result: Optional[object] = None  # benchmark.Result
    fp16: str = '-'
    note: str = ''


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='gpu_report.md', help='markdown file to write '
                        '(default: gpu_report.md)')
    parser.add_argument('--dry-run', action='store_true', help='CPU, tiny inputs, one round, '
                        'the eager compile backend: checks the script end to end')
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS,
                        help='models to measure (default: all); the reference is Swin-T')
    parser.add_argument('--cases', nargs='+', default=CASE_NAMES, choices=CASE_NAMES,
                        help='settings to measure (default: all): mode and input height')
    parser.add_argument('--budget-s', type=float, default=480.,
                        help='seconds the whole report may take (default: 480)')
    parser.add_argument('--started-at', type=float,
                        help='time.time() when the report started (the shell script\'s start, '
                        'so that installing the wheels counts); default: now')
    parser.add_argument('--warmup', type=int, help='untimed rounds (default: 3; dry run 0)')
    parser.add_argument('--repeats', type=int, help='timed rounds (default: 10; dry run 1)')
    args = parser.parse_args(argv)
    args.device = 'cpu' if args.dry_run else 'cuda'
    args.backend = 'eager' if args.dry_run else 'inductor'
    args.warmup = (0 if args.dry_run else 3) if args.warmup is None else args.warmup
    args.repeats = (1 if args.dry_run else 10) if args.repeats is None else args.repeats
    args.started_at = time.time() if args.started_at is None else args.started_at
    args.deadline = args.started_at + args.budget_s - MARGIN_S
    return args


def shape_of(case: Case, dry_run: bool) -> str:
    return DRY_SHAPES[case.shape] if dry_run else case.shape


def bench_args(models: Sequence[str], case: Case, args: argparse.Namespace,
               compile: bool = False):
    """The :mod:`benchmark` arguments of one run."""
    from glmix_mm.analysis import benchmark
    argv = list(models) + ['--device', args.device, '--amp', 'bf16', '--mode', case.mode,
                           '--shape', shape_of(case, args.dry_run), '--warmup', str(args.warmup),
                           '--repeats', str(args.repeats)]
    if compile:
        argv += ['--compile', '--compile-backend', args.backend]
    return benchmark.parse_args(argv)


def fp16_finite(entry, mode: str, x) -> str:
    """One step of ``entry``'s model under fp16 autocast: ``yes`` if the outputs (infer) or the
    loss and every gradient (train) are finite, else how many tensors are not."""
    from glmix_mm.analysis import steps
    import torch
    model = entry.model
    out = steps.backbone_step(model, x, mode, 'fp16')()
    tensors = steps._tensors(out)
    if mode == 'train':
        tensors += [p.grad for p in model.parameters() if p.grad is not None]
        model.zero_grad(set_to_none=True)
    bad = sum(not bool(torch.isfinite(t).all()) for t in tensors)
    return 'yes' if not bad else f'no ({bad} of {len(tensors)} tensors)'


def run_eager(case: Case, args: argparse.Namespace) -> Dict[str, Row]:
    """Every model eager, in alternating rounds, then its fp16 check."""
    from glmix_mm.analysis import inputs, steps, timing
    import torch
    bargs = bench_args(args.models, case, args)
    x = inputs.make_input(bargs.shape_tuple, args.device, bargs.seed)
    entries = steps.build_entries(bargs, x)
    rounds = timing.run_rounds(entries, args.device, bargs.warmup, bargs.repeats)
    ref = REF if REF in args.models else entries[0].spec.label
    results = timing.summarize(entries, rounds.times, bargs.shape_tuple[0], ref, rounds.peaks)
    rows = {}
    for entry, result in zip(entries, results):
        try:
            fp16 = fp16_finite(entry, case.mode, x)
        except Exception as error:  # reported in the table
            fp16 = f'failed: {type(error).__name__}'
        rows[entry.spec.label] = Row(case, entry.spec.label, False, result, fp16)
    del entries
    if args.device == 'cuda':
        torch.cuda.empty_cache()
    return rows


def run_compiled(case: Case, model: str, args: argparse.Namespace) -> Row:
    """``model`` and its compiled twin in alternating rounds; the twin's row."""
    from glmix_mm.analysis import benchmark
    import torch
    torch._dynamo.reset()  # fresh caches: no recompile limit reached across runs
    rows, _ = benchmark.benchmark(bench_args([model], case, args, compile=True))
    if args.device == 'cuda':
        torch.cuda.empty_cache()
    return Row(case, model, True, rows[1])


class Estimates:
    """Expected compile seconds of a (model, mode), from what this run measured so far."""

    def __init__(self) -> None:
        self.seen: Dict[tuple, float] = {}

    def add(self, model: str, mode: str, seconds: float) -> None:
        self.seen[(model, mode)] = max(seconds, self.seen.get((model, mode), 0.))

    def get(self, model: str, mode: str) -> float:
        if (model, mode) in self.seen:
            return self.seen[(model, mode)]
        same_mode = [s for (_, m), s in self.seen.items() if m == mode]
        return max(same_mode) if same_mode else DEFAULT_COMPILE_S[mode]


def _ms(result, attr: str, fmt: str = '{:.1f}') -> str:
    value = getattr(result, attr, None) if result is not None else None
    return '-' if value is None else fmt.format(value)


def format_report(rows: List[Row], args: argparse.Namespace, info: Dict[str, str],
                  skipped: List[str], elapsed: float) -> str:
    """The markdown report: machine, settings, the table, what was left out."""
    from glmix_mm.analysis import report
    ref_medians = {r.case: r.result.median_ms for r in rows
                   if r.model == REF and not r.compiled and r.result is not None}
    what = ('DRY RUN on the CPU with tiny inputs (a check of the script, not a measurement)'
            if args.dry_run else 'CUDA')
    lines = [
        '## GPU report: GLNet against Swin-T, ResNet-50 and ConvNeXt-T', '',
        'Machine: ' + '; '.join(f'{k}: {v}' for k, v in info.items()) + '.', '',
        f'Run: {what}; forward under bf16 autocast; backbones of tools/analysis/benchmark.py '
        '(four stage outputs, GLNet with out_norm=None); train = forward, scalar loss, '
        f'backward; {args.warmup} warm-up + {args.repeats} timed rounds, alternating; '
        f'compiled = torch.compile(backend={args.backend!r}) of the same module, timed in '
        'rounds alternating with its eager twin; compile (s) = its first call; peak memory = '
        'what one step allocates beyond the model and its input; fp16 finite = one eager step '
        'under fp16 autocast has finite outputs (infer) or loss and gradients (train). '
        f'Report took {elapsed:.0f} s.', '',
        '| mode | input | model | variant | median (ms) | images/s | vs Swin-T eager | '
        'peak mem (MiB) | compile (s) | graph breaks | compiled vs eager | fp16 finite |',
        '|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|',
    ]
    for r in rows:
        res = r.result
        ref = ref_medians.get(r.case)
        vs_ref = '-' if res is None or ref is None else report.speed_text(
            ref / res.median_ms, r.model == REF and not r.compiled)
        vs_eager = '-' if res is None or res.vs_eager is None else report.speed_text(
            res.vs_eager, False)
        breaks = '-' if res is None or res.graph_breaks is None else str(res.graph_breaks)
        median = _ms(res, 'median_ms') if res is not None else (r.note or 'not run')
        lines.append(
            f'| {r.case.mode} | {shape_of(r.case, args.dry_run)} | {r.model} | '
            f'{"compiled" if r.compiled else "eager"} | {median} | '
            f'{_ms(res, "images_per_s")} | {vs_ref} | {_ms(res, "peak_mib", "{:.0f}")} | '
            f'{_ms(res, "compile_s")} | {breaks} | {vs_eager} | {r.fp16} |')
    if skipped:
        lines += ['', 'Not run: ' + '; '.join(skipped) + '.']
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> List[Row]:
    args = parse_args(argv)
    stand_in = allow_mmcv_lite()
    from glmix_mm.analysis import report
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('gpu_report: no CUDA GPU visible (torch.cuda.is_available() is False); '
                         'use --dry-run to check the script on the CPU.')
    if args.dry_run:
        torch.set_num_threads(1)
    info = report.machine_info(args.device)
    if stand_in:
        info['mmcv'] = 'mmcv-lite (compiled ops replaced by a stand-in)'
    cases = [c for c in CASES if c.name in args.cases]
    eager: Dict[Case, Dict[str, Row]] = {}
    compiled: Dict[tuple, Row] = {}
    skipped: List[str] = []
    estimates = Estimates()

    def write() -> str:
        rows = []
        for case in cases:
            for model in args.models:
                rows.append(eager.get(case, {}).get(model) or Row(case, model, False))
                rows.append(compiled.get((case, model)) or Row(case, model, True))
        report = format_report(rows, args, info, skipped, time.time() - args.started_at)
        with open(args.out, 'w') as f:
            f.write(report)
        return report

    for case in cases:
        eager[case] = run_eager(case, args)
        print(f'gpu_report: eager {case.mode} {shape_of(case, args.dry_run)} done '
              f'({time.time() - args.started_at:.0f} s)', file=sys.stderr, flush=True)
        write()
    for model in (m for m in COMPILE_ORDER if m in args.models):
        for case in cases:
            left = args.deadline - time.time()
            need = estimates.get(model, case.mode)
            label = f'{model} {case.mode} {shape_of(case, args.dry_run)} compiled'
            if need > left:
                skipped.append(f'{label} (time budget: about {need:.0f} s needed, '
                               f'{max(left, 0):.0f} s left)')
                continue
            try:
                row = run_compiled(case, model, args)
            except Exception as error:  # reported in the table, the rest still runs
                row = Row(case, model, True, note=f'failed: {type(error).__name__}')
                print(f'gpu_report: {label} failed: {error}', file=sys.stderr)
            compiled[(case, model)] = row
            if row.result is not None:
                estimates.add(model, case.mode, row.result.compile_s)
            print(f'gpu_report: {label} done ({time.time() - args.started_at:.0f} s)',
                  file=sys.stderr, flush=True)
            write()
    print(write())
    print(f'gpu_report: written to {args.out}', file=sys.stderr)
    return [r for case in cases for model in args.models
            for r in (eager[case].get(model), compiled.get((case, model))) if r is not None]


if __name__ == '__main__':
    main()
