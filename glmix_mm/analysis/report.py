"""The benchmark's report: the machine, the settings, a plain-text or markdown table."""
import argparse
import os
import platform
from typing import Dict, List, Sequence, Tuple

import torch

from .steps import compile_options
from .timing import Result

def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str) -> Dict[str, str]:
    """What ran the benchmark: device name, CPU, threads, versions."""
    info = {
        'CPU': f'{cpu_name()} ({os.cpu_count()} logical CPUs)',
        'torch threads': str(torch.get_num_threads()),
        'torch': torch.__version__,
        'Python': platform.python_version(),
    }
    if device == 'cuda':
        info['GPU'] = f'{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})'
    return info


def describe_run(args: argparse.Namespace) -> str:
    dtype = 'fp32' if args.amp == 'none' else f'autocast {args.amp}'
    what = args.mode
    if args.mode == 'infer' and any(s.is_config for s in args.specs):
        what += f' ({args.infer_mode} for full models)'
    text = (f'{what}, input {args.shape}, {dtype}, {args.device}, {args.warmup} warm-up + '
            f'{args.repeats} timed rounds, alternating')
    if args.compile:
        options = ', '.join(f'{k}={v!r}' for k, v in compile_options(args).items())
        text += f'; compiled twins: torch.compile({options})'
    return text


def speed_text(ratio: float, is_ref: bool) -> str:
    if is_ref:
        return '1.00x (ref)'
    return f'{ratio:.2f}x faster' if ratio >= 1 else f'{1 / ratio:.2f}x slower'


def _columns(rows: Sequence[Result], ref: str) -> Tuple[List[str], List[List[str]]]:
    header = ['model', 'params (M)', 'median (ms)', 'min (ms)', 'images/s',
              f'speed vs {ref}', 'peak mem (MiB)']
    body = [[r.label, f'{r.params_m:.1f}', f'{r.median_ms:.1f}', f'{r.min_ms:.1f}',
             f'{r.images_per_s:.2f}', speed_text(r.speed_vs_ref, r.label == ref),
             '-' if r.peak_mib is None else f'{r.peak_mib:.0f}'] for r in rows]
    if any(r.compile_s is not None for r in rows):
        header += ['compile (s)', 'graph breaks', 'vs eager']
        for line, r in zip(body, rows):
            line += ['-', '-', '-'] if r.compile_s is None else [
                f'{r.compile_s:.1f}', str(r.graph_breaks), speed_text(r.vs_eager, False)]
    return header, body


def format_table(rows: Sequence[Result], ref: str) -> str:
    """A plain-text table, columns aligned."""
    header, body = _columns(rows, ref)
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths)))
             for line in [header] + body]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def format_markdown(rows: Sequence[Result], ref: str, args: argparse.Namespace,
                    info: Dict[str, str]) -> str:
    """A markdown table, preceded by the machine and the settings."""
    header, body = _columns(rows, ref)
    machine = '; '.join(f'{k}: {v}' for k, v in info.items())
    lines = [f'Machine: {machine}.', f'Run: {describe_run(args)}.', '',
             '| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---'] + ['--:'] * (len(header) - 1)) + '|']
    lines += ['| ' + ' | '.join(line) + ' |' for line in body]
    return '\n'.join(lines)


def print_report(rows: Sequence[Result], ref: str, args: argparse.Namespace,
                 diffs: Dict[Tuple[str, str], float]) -> None:
    info = machine_info(args.device)
    print('Machine: ' + '; '.join(f'{k}: {v}' for k, v in info.items()))
    print(f'Run: {describe_run(args)}')
    print(f'speed vs {ref} = its median latency / the model\'s median latency '
          '(above 1: faster than the reference)')
    print(format_table(rows, ref))
    if args.compile:
        print('compile (s) = the first call of the compiled twin (tracing, graph capture, code '
              'generation), not timed in the rounds; vs eager = the eager twin\'s median / the '
              'compiled median')
    faults = [f'{r.label} {r.faults_per_step:.0f}' for r in rows if r.faults_per_step is not None]
    if faults:
        print('minor page faults per timed step (median; first touches of memory fresh from the '
              'OS): ' + ', '.join(faults))
    for (ours, theirs), diff in diffs.items():
        print(f'{ours} with the weights of {theirs}: largest relative output difference '
              f'{diff:.1e}')
    if args.markdown:
        print()
        print(format_markdown(rows, ref, args, info))

