"""Evaluate a checkpoint on a config's test set (COCO bbox/segm, ADE20K mIoU, ImageNet top-1:
the config's evaluator decides).

Examples::

    python tools/test.py configs/maskrcnn_glnet_4g_coco.py work_dirs/.../epoch_12.pth
    python tools/test.py CONFIG CHECKPOINT --show-dir vis    # also save drawn predictions
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
    bash tools/slurm_test.sh PARTITION JOB CONFIG CHECKPOINT   # Slurm (docs/clusters.md)

A checkpoint that does not fit the config's model (another arch, another model family, a
backbone-only file, another number of classes) is refused with the key report; --allow-partial
loads the keys that fit and warns.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.dist import get_rank

import glmix_mm  # noqa: F401  (registers the models and hooks; loads checkpoints safely)
from glmix_mm.checkpoint import CheckpointNotFoundError
from glmix_mm.runner import (add_safety_hooks, apply_common_args, build_runner, check_datasets,
                             distributed_session, enable_amp, enable_show_dir)
from glmix_mm.utils import (add_run_arguments, parse_run_args, read_config, tool_main,
                            unknown_types_refused)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument('--show-dir', help='save drawn predictions here (under the work dir)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision inference: float16 on a GPU, bfloat16 on the CPU')
    parser.add_argument('--allow-partial', action='store_true',
                        help='load the keys of a checkpoint that fit the model and warn about '
                        'the rest, instead of refusing it')
    add_run_arguments(parser, 'dist_test.sh')
    return parse_run_args(parser, argv)


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = read_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise CheckpointNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    prepare_config(cfg, args)
    check_datasets(cfg, ('test_dataloader', ))
    with distributed_session(cfg):
        return run_test(cfg)


def prepare_config(cfg: Config, args: argparse.Namespace) -> None:
    """Apply the command line to ``cfg``: work dir, launcher, checkpoint, drawing, AMP and the
    glmix_mm hooks."""
    apply_common_args(cfg, args.work_dir, args.config, args.launcher)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        enable_show_dir(cfg, args.show_dir)
    if args.amp:
        enable_amp(cfg, training=False)
    add_safety_hooks(cfg, allow_partial=args.allow_partial)


def run_test(cfg: Config) -> int:
    """Build the runner, test and print the metrics; the exit code. No reference to the runner
    outlives this call (a distributed process group is released with it). An error of ours
    goes to :func:`main`'s handler."""
    runner = build_runner(cfg)
    with unknown_types_refused():  # the data loader's dataset and transforms
        metrics = runner.test()
    if get_rank() == 0:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0


if __name__ == '__main__':
    sys.exit(main())
