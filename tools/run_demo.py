"""The main job on embedded data: generate the demo dataset, train Mask R-CNN + GLNet-4G on it,
evaluate with COCO metrics (bbox + segm) and save drawn predictions as PNG.

    python tools/run_demo.py [--work-dir work_dirs/demo]

Prints the COCO tables, the final mAPs and the wall-clock time of training and testing.
"""
import argparse
import os.path as osp
import subprocess
import sys
import time

from glmix_mm.errors import GLMixMMError
from glmix_mm.utils import tool_main

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs/demo/maskrcnn_glnet_4g_demo.py')


def run(args: list) -> None:
    print('+', ' '.join(args), flush=True)
    code = subprocess.run([sys.executable] + args, cwd=ROOT).returncode
    if code:
        raise GLMixMMError(f'{args[0]} exited with {code} (its error above)')


@tool_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/maskrcnn_glnet_4g_demo')
    args = parser.parse_args(argv)
    if not osp.exists(osp.join(ROOT, 'data/demo/coco/annotations/instances_val.json')):
        run(['tools/make_demo_data.py', '--out', 'data/demo'])
    start = time.time()
    run(['tools/train.py', CONFIG, '--work-dir', args.work_dir])
    trained = time.time()
    with open(osp.join(ROOT, args.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    run(['tools/test.py', CONFIG, checkpoint, '--work-dir', args.work_dir, '--show-dir', 'vis'])
    print(f'Training took {trained - start:.0f} s, testing {time.time() - trained:.0f} s; '
          f'drawn predictions are under {args.work_dir}/<timestamp>/vis/.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
