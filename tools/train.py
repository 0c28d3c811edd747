"""Train a detector, segmentor or classifier from a config (MMDetection / MMSegmentation /
MMPretrain: the config's ``default_scope`` decides).

Examples::

    python tools/train.py configs/maskrcnn_glnet_4g_coco.py
    python tools/train.py configs/demo/maskrcnn_glnet_4g_demo.py --work-dir work_dirs/demo
    python tools/train.py CONFIG --resume              # continue from the last checkpoint
    bash tools/dist_train.sh CONFIG 8                  # 8 processes (torchrun, PyTorch DDP)
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import glmix_mm  # noqa: E402,F401  (registers the models; loads checkpoints with torch>=2.6)
from glmix_mm.utils import (DatasetNotFoundError, apply_common_args, check_datasets,  # noqa: E402
                            setup_cpu_distributed)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model from a config.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or (no value) from the latest one in the work dir')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate to the actual batch size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_epochs=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (dist_train.sh sets pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    apply_common_args(cfg, args.work_dir, args.config, args.launcher)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr') or {}, enable=True)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = build_config(args)
    try:
        check_datasets(cfg, ('train_dataloader', 'val_dataloader'))
    except DatasetNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    setup_cpu_distributed(cfg)
    Runner.from_cfg(cfg).train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
