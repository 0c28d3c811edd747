"""The pretrain-then-fine-tune demo, end to end, and its comparison table (docs/detection.md,
"Pretrained versus from scratch").

1. ``pretrain``: generate the 12-class shapes set (tools/make_pretrain_data.py) and the demo
   detection / segmentation data (tools/make_demo_data.py) where missing; pretrain GLNet-4G
   (configs/demo/glnet_4g_pretrain_demo.py) and ResNet-50 (configs/demo/resnet50_pretrain_demo.py)
   with the same protocol; write GLNet's in the upstream release layout
   (tools/model_converters/mm2glnet.py) to checkpoints/demo/glnet_4g_pretrained.pth, and copy
   ResNet-50's to checkpoints/demo/resnet50_pretrained.pth.
2. ``det`` / ``seg``: fine-tune Mask R-CNN / UperNet for every row (from scratch or pretrained,
   per-output LayerNorms or raw outputs, and the ResNet-50 reference), each for the same number
   of iterations, and read the final validation metrics.

Every run is a plain ``tools/train.py`` command, printed before it starts; ``--jobs`` runs that
many at once, each with ``--threads`` CPU threads. The table is printed and written with the
metrics to ``<work-dir>/results.{md,json}``; a row already in results.json is not run again
(``--rerun`` does).

    python tools/analysis/pretrain_finetune.py --stages pretrain det seg --jobs 2
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional

from glmix_mm.errors import GLMixMMError
from glmix_mm.utils.cli import at_least, tool_main

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GLNET_CKPT = 'checkpoints/demo/glnet_4g_pretrained.pth'
R50_CKPT = 'checkpoints/demo/resnet50_pretrained.pth'


class Run(NamedTuple):
    name: str  # work-dir name, and the row's key in results.json
    stage: str  # 'pretrain', 'det' or 'seg'
    backbone: str
    init: str  # 'pretrained' or 'from scratch'
    outputs: str  # how the stage outputs reach the neck
    config: str
    options: List[str]


SCRATCH = ['model.backbone.init_cfg=None']
RAW = ['model.backbone.out_norm=None']


def finetune_runs(stage: str) -> List[Run]:
    """The rows of one comparison: GLNet-4G x {pretrained, scratch} x {LN, raw}, then R50."""
    head = dict(det='maskrcnn', seg='upernet')[stage]
    glnet = f'configs/demo/{head}_glnet_4g_finetune_demo.py'
    return [
        Run(f'{stage}_glnet_pretrained_ln', stage, 'GLNet-4G', 'pretrained',
            'LayerNorm (shipped)', glnet, []),
        Run(f'{stage}_glnet_pretrained_raw', stage, 'GLNet-4G', 'pretrained', 'raw', glnet, RAW),
        Run(f'{stage}_glnet_scratch_ln', stage, 'GLNet-4G', 'from scratch',
            'LayerNorm (shipped)', glnet, SCRATCH),
        Run(f'{stage}_glnet_scratch_raw', stage, 'GLNet-4G', 'from scratch', 'raw', glnet,
            SCRATCH + RAW),
        Run(f'{stage}_r50_pretrained', stage, 'ResNet-50', 'pretrained', 'raw (its own recipe)',
            f'configs/demo/{head}_r50_finetune_demo.py', []),
    ]


RUNS = [
    Run('pretrain_glnet_4g', 'pretrain', 'GLNet-4G', '', '',
        'configs/demo/glnet_4g_pretrain_demo.py', []),
    Run('pretrain_resnet50', 'pretrain', 'ResNet-50', '', '',
        'configs/demo/resnet50_pretrain_demo.py', []),
] + finetune_runs('det') + finetune_runs('seg')


def command(run: Run, work_dir: str) -> List[str]:
    cmd = [sys.executable, 'tools/train.py', run.config, '--work-dir', work_dir]
    return cmd + (['--cfg-options', *run.options] if run.options else [])


def run_logged(cmd: List[str], log: str, threads: int) -> float:
    """Run ``cmd`` in the repository root with its output in ``log``; return its wall time."""
    print('+', ' '.join(cmd[1:]), f'> {log}', flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.time()
    with open(log, 'w') as f:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if code:
        raise GLMixMMError(f'{" ".join(cmd[1:3])} exited with {code}; its output is in {log}')
    return time.time() - start


def last_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics of the last validation a run logged (MMEngine's ``scalars.json``)."""
    logs = sorted(glob.glob(osp.join(ROOT, work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise GLMixMMError(f'{work_dir}: no MMEngine scalars.json; did the run finish?')
    metrics = {}
    with open(logs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if not any(k.startswith('loss') for k in record):  # a validation record
                metrics = record
    return metrics


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def make_data() -> None:
    for tool, marker in (('make_pretrain_data.py --out data/pretrain', 'data/pretrain/val'),
                         ('make_demo_data.py --out data/demo', 'data/demo/ade')):
        if not osp.isdir(osp.join(ROOT, marker)) and subprocess.run(
                [sys.executable, *f'tools/{tool}'.split()], cwd=ROOT).returncode:
            raise GLMixMMError(f'{tool} failed (its error above)')


def publish_pretrained(run: Run, checkpoint: str) -> None:
    """Put a pretraining run's last checkpoint where the fine-tuning configs read it."""
    os.makedirs(osp.join(ROOT, 'checkpoints/demo'), exist_ok=True)
    if run.backbone == 'GLNet-4G':  # in the upstream release layout
        if subprocess.run([sys.executable, 'tools/model_converters/mm2glnet.py', checkpoint,
                           GLNET_CKPT], cwd=ROOT).returncode:
            raise GLMixMMError(f'mm2glnet.py could not convert {checkpoint} (its error above)')
    else:  # MMPretrain's layout, read with prefix='backbone.'
        shutil.copyfile(checkpoint, osp.join(ROOT, R50_CKPT))


class Results:
    """results.json, re-read before each update so that several invocations can share it."""

    def __init__(self, work_dir: str):
        self.path = osp.join(ROOT, work_dir, 'results.json')
        self.lock = threading.Lock()

    def read(self) -> Dict[str, dict]:
        if not osp.isfile(self.path):
            return {}
        with open(self.path) as f:
            return json.load(f)

    def add(self, name: str, result: dict) -> Dict[str, dict]:
        with self.lock:
            results = self.read()
            results[name] = result
            tmp = self.path + f'.{os.getpid()}.tmp'
            with open(tmp, 'w') as f:
                json.dump(results, f, indent=1)
            os.replace(tmp, self.path)
            with open(osp.join(osp.dirname(self.path), 'results.md'), 'w') as f:
                f.write(table(results) + '\n')
        return results


def execute(run: Run, work_dir: str, threads: int) -> dict:
    wd = osp.join(work_dir, run.name)
    seconds = run_logged(command(run, wd), osp.join(ROOT, wd + '.log'), threads)
    if run.stage == 'pretrain':
        publish_pretrained(run, last_checkpoint(wd))
    return dict(run._asdict(), seconds=round(seconds), **last_metrics(wd))


def table(results: Dict[str, dict]) -> str:
    """Markdown tables of the pretraining and fine-tuning results gathered so far."""
    lines = []
    pre = [results[r.name] for r in RUNS if r.stage == 'pretrain' and r.name in results]
    if pre:
        lines += ['| Pretrained | top-1 (val) | top-5 | wall time (s) |', '|---|---|---|---|']
        lines += [f'| {r["backbone"]} | {r.get("accuracy/top1", float("nan")):.1f} | '
                  f'{r.get("accuracy/top5", float("nan")):.1f} | {r["seconds"]} |' for r in pre]
    for stage, metrics in (('det', ('coco/bbox_mAP', 'coco/segm_mAP')), ('seg', ('mIoU', 'aAcc'))):
        rows = [results[r.name] for r in finetune_runs(stage) if r.name in results]
        if not rows:
            continue
        lines += ['', f'| Backbone | Init | Outputs to the neck | {" | ".join(metrics)} | '
                  'wall time (s) |', '|---|---|---|' + '---|' * len(metrics) + '---|']
        for r in rows:
            values = ' | '.join(f'{r.get(m, float("nan")):.3f}' for m in metrics)
            lines.append(f'| {r["backbone"]} | {r["init"]} | {r["outputs"]} | {values} | '
                         f'{r["seconds"]} |')
    return '\n'.join(lines)


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--stages', nargs='+', choices=('pretrain', 'det', 'seg'),
                        default=['pretrain', 'det', 'seg'])
    parser.add_argument('--only', nargs='+', choices=[r.name for r in RUNS],
                        help='run only these rows')
    parser.add_argument('--work-dir', default='work_dirs/pretrain_finetune')
    parser.add_argument('--jobs', type=at_least(1), default=1, help='runs at once')
    parser.add_argument('--threads', type=at_least(1), default=None,
                        help='CPU threads per run (default: CPUs / jobs)')
    parser.add_argument('--rerun', action='store_true', help='rerun rows already recorded')
    return parser.parse_args(argv)


@tool_main
def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    os.makedirs(osp.join(ROOT, args.work_dir), exist_ok=True)
    results = Results(args.work_dir)
    done = set() if args.rerun else set(results.read())
    todo = [r for r in RUNS if r.stage in args.stages and r.name not in done and
            (not args.only or r.name in args.only)]
    make_data()
    # Pretraining first: the pretrained rows read its checkpoints.
    for stage in ('pretrain', 'finetune'):
        batch = [r for r in todo if (r.stage == 'pretrain') == (stage == 'pretrain')]
        with ThreadPoolExecutor(args.jobs) as pool:  # after an error, the rows finished
            for run, result in zip(batch, pool.map(  # before it stay in results.json
                    lambda r: execute(r, args.work_dir, threads), batch)):
                results.add(run.name, result)
    print(table(results.read()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
