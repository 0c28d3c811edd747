"""Timing rounds and memory: models run one after another in rounds whose order rotates, so that
slow drifts of the machine hit all alike; per step the latency, on CUDA the peak memory beyond
what was allocated before it, on the CPU the minor page faults; CPU peak memory is measured in a
fresh process, where the resident-set high-water mark belongs to one model alone."""
import argparse
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch

from .inputs import make_input
from .steps import Benchmarked, build_benchmarked, compiled_twin
from .zoo import COMPILED_SUFFIX, ModelSpec

MIB = 1024.**2


@dataclass
class Result:
    """One row of the tables. Latencies in ms; ``speed_vs_ref`` is ref median / own median
    (above 1: faster than the reference); ``peak_mib`` is None when not measured;
    ``faults_per_step`` is the median count of minor page faults in a timed CPU step. For a
    compiled twin (``--compile``): ``compile_s``, the seconds of its first call; ``graph_breaks``,
    those dynamo met in it; ``vs_eager``, the eager twin's median / its own median."""
    label: str
    params_m: float
    median_ms: float
    min_ms: float
    images_per_s: float
    speed_vs_ref: float
    peak_mib: Optional[float] = None
    faults_per_step: Optional[float] = None
    compile_s: Optional[float] = None
    graph_breaks: Optional[int] = None
    vs_eager: Optional[float] = None


def sync_device(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def _minor_page_faults() -> Optional[int]:
    """Minor page faults of this process so far (None where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Step(NamedTuple):
    """One timed step: latency (s); on CUDA the memory beyond what was allocated before it
    (MiB); on the CPU the minor page faults during it (first touches of fresh memory)."""
    seconds: float
    peak_mib: Optional[float]
    page_faults: Optional[int]


def timed_run(entry: Benchmarked, device: str) -> Step:
    """Run one step of ``entry`` and measure it."""
    before = 0
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    faults = _minor_page_faults() if device == 'cpu' else None
    start = time.perf_counter()
    try:
        entry.step()
        sync_device(device)
    except Exception as error:
        raise RuntimeError(f'{entry.spec.label} failed: {type(error).__name__}: {error}') \
            from error
    elapsed = time.perf_counter() - start
    if faults is not None:
        faults = _minor_page_faults() - faults
    peak = (torch.cuda.max_memory_allocated() - before) / MIB if device == 'cuda' else None
    return Step(elapsed, peak, faults)


class FirstCall(NamedTuple):
    """The first call of a compiled twin: its seconds (compile time) and the graph breaks
    dynamo met in it."""
    seconds: float
    graph_breaks: int


def _graph_breaks_so_far() -> int:
    from torch._dynamo.utils import counters
    return sum(counters['graph_break'].values())


def first_calls(entries: Sequence[Benchmarked], device: str) -> Dict[str, FirstCall]:
    """Call each compiled twin once (this compiles it), timed, before the rounds."""
    calls = {}
    for entry in (e for e in entries if e.spec.compiled):
        breaks = _graph_breaks_so_far()
        step = timed_run(entry, device)
        calls[entry.spec.label] = FirstCall(step.seconds, _graph_breaks_so_far() - breaks)
    return calls


class Rounds(NamedTuple):
    """Per label: the timed latencies (s), on CUDA the largest per-step memory (MiB), on the
    CPU the page faults of each timed step."""
    times: Dict[str, List[float]]
    peaks: Dict[str, Optional[float]]
    page_faults: Dict[str, List[int]]


def run_rounds(entries: Sequence[Benchmarked], device: str, warmup: int,
               repeats: int) -> Rounds:
    """Alternate the models: every round runs each once, the order rotated by one per round."""
    rounds = Rounds({e.spec.label: [] for e in entries}, {e.spec.label: None for e in entries},
                    {e.spec.label: [] for e in entries})
    for round_index in range(warmup + repeats):
        shift = round_index % len(entries)
        for entry in list(entries[shift:]) + list(entries[:shift]):
            step = timed_run(entry, device)
            if round_index < warmup:
                continue
            label = entry.spec.label
            rounds.times[label].append(step.seconds)
            if step.peak_mib is not None:
                rounds.peaks[label] = max(step.peak_mib, rounds.peaks[label] or 0.)
            if step.page_faults is not None:
                rounds.page_faults[label].append(step.page_faults)
    return rounds


def summarize(entries: Sequence[Benchmarked],
              times: Dict[str, List[float]],
              batch: int,
              ref: str,
              peaks: Optional[Dict[str, Optional[float]]] = None,
              page_faults: Optional[Dict[str, List[int]]] = None,
              compiles: Optional[Dict[str, FirstCall]] = None) -> List[Result]:
    """Rows of the tables, with speeds relative to ``ref`` and, for compiled twins, to their
    eager models."""
    ref_median = statistics.median(times[ref])
    rows = []
    for entry in entries:
        label = entry.spec.label
        median = statistics.median(times[label])
        faults = (page_faults or {}).get(label)
        row = Result(label=label, params_m=entry.params / 1e6, median_ms=median * 1e3,
                     min_ms=min(times[label]) * 1e3, images_per_s=batch / median,
                     speed_vs_ref=ref_median / median, peak_mib=(peaks or {}).get(label),
                     faults_per_step=statistics.median(faults) if faults else None)
        first = (compiles or {}).get(label)
        if first is not None:
            eager = times[label[:-len(COMPILED_SUFFIX)]]
            row.compile_s, row.graph_breaks = first.seconds, first.graph_breaks
            row.vs_eager = statistics.median(eager) / median
        rows.append(row)
    return rows


def _proc_status_kib(key: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the resident-set high-water mark (Linux >= 4.0); False where impossible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss_kib() -> int:
    hwm = _proc_status_kib('VmHWM')
    if hwm is not None:
        return hwm
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == 'darwin' else peak  # bytes on macOS


def measure_cpu_memory(args: argparse.Namespace, spec: ModelSpec) -> float:
    """In this process: peak RSS of one step beyond the RSS after building (MiB).

    Meant for a fresh process (:func:`memory_in_subprocess`). Where the high-water mark cannot be
    reset, earlier peaks (imports, building) can hide the step's. A compiled twin is compiled and
    called once first, and its second call is measured.
    """
    x = make_input(args.shape_tuple, 'cpu', args.seed)
    entry = build_benchmarked(spec, args, x)
    if spec.compiled:  # the step of the compiled code, not the compilation
        entry = compiled_twin(entry, args, x)
        entry.step()
    baseline = _proc_status_kib('VmRSS')
    if not _reset_peak_rss() or baseline is None:
        print('warning: cannot reset the peak RSS; the figure may include building',
              file=sys.stderr)
        baseline = baseline or 0
    entry.step()
    return max(_peak_rss_kib() - baseline, 0) / 1024.


def _memory_worker(args: argparse.Namespace, label: str, queue) -> None:
    """Spawned process: measure ``label`` and put (label, MiB or error text) on ``queue``."""
    try:
        apply_threads(args.threads)
        spec = next(s for s in args.specs if s.label == label)
        queue.put((label, measure_cpu_memory(args, spec)))
    except Exception as error:  # reported by the parent
        queue.put((label, f'{type(error).__name__}: {error}'))


def memory_in_subprocess(args: argparse.Namespace, label: str) -> Optional[float]:
    """Peak memory of one step of ``label`` (MiB), measured in a fresh spawned process."""
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    process = context.Process(target=_memory_worker, args=(args, label, queue))
    process.start()
    try:
        _, value = queue.get()
    finally:
        process.join()
    if isinstance(value, str):
        print(f'warning: memory of {label} not measured: {value}', file=sys.stderr)
        return None
    return value


def apply_threads(threads: Optional[int]) -> None:
    if threads is not None:
        torch.set_num_threads(threads)

