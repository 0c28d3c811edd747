"""Train a detector, segmentor or classifier from a config (MMDetection / MMSegmentation /
MMPretrain: the config's ``default_scope`` decides).

Examples::

    python tools/train.py configs/maskrcnn_glnet_4g_coco.py
    python tools/train.py configs/demo/maskrcnn_glnet_4g_demo.py --work-dir work_dirs/demo
    python tools/train.py CONFIG --resume              # continue from the last checkpoint
    bash tools/dist_train.sh CONFIG 8                  # 8 processes (torchrun, PyTorch DDP)
    bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR   # Slurm (docs/clusters.md)

Ctrl-C, SIGTERM or SIGUSR1 stops at the next iteration boundary, saves that iteration and
leaves a run that ``--resume`` continues (exit code 128 + the signal number); see
docs/reliability.md.
"""
import argparse
import signal
import sys

from mmengine.config import Config
from mmengine.dist import get_rank
from mmengine.runner import Runner

import glmix_mm  # noqa: F401  (registers the models and hooks; loads checkpoints safely)
from glmix_mm.engine import (ResumableTrainingHook, TrainingInterrupted, check_resume_file,
                             latest_checkpoint)
from glmix_mm.runner import (add_safety_hooks, apply_common_args, build_runner, check_datasets,
                             check_pretrained_weights, distributed_session, enable_amp,
                             use_resumable_loop)
from glmix_mm.utils import (add_run_arguments, parse_run_args, read_config, tool_main,
                            unknown_types_refused)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model from a config.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision: float16 on a GPU, bfloat16 on the CPU')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or (no value) from the latest one in the work dir')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate to the actual batch size')
    add_run_arguments(parser, 'dist_train.sh')
    return parse_run_args(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    cfg = read_config(args.config, args.cfg_options)
    apply_common_args(cfg, args.work_dir, args.config, args.launcher)
    if args.amp:
        enable_amp(cfg, training=True)
    add_safety_hooks(cfg)
    use_resumable_loop(cfg)
    if args.auto_scale_lr:
        cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr') or {}, enable=True)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = build_config(args)
    if cfg.get('resume') and cfg.get('load_from'):  # before anything is built
        check_resume_file(cfg.load_from, cfg.work_dir)
    check_datasets(cfg, ('train_dataloader', 'val_dataloader'))
    if not cfg.get('resume'):  # a resumed run loads its weights from the checkpoint
        check_pretrained_weights(cfg)
    with distributed_session(cfg):  # ends a distributed run cleanly (no abort at exit)
        return run_training(cfg)


def run_training(cfg: Config) -> int:
    """Build the runner and train; the exit code. No reference to the runner outlives this
    call (a distributed process group is released with it). An error of ours goes to
    :func:`main`'s handler."""
    runner = build_runner(cfg)
    try:
        with unknown_types_refused():  # the data loaders' datasets and transforms
            runner.train()
    except KeyboardInterrupt as e:
        return report_interrupt(runner, e)
    except Exception:
        if not interrupt_requested(runner):
            raise
        # Stopped by the signal some other way (e.g. a data-loader worker that Ctrl-C ended).
        return report_interrupt(runner, KeyboardInterrupt())
    finally:
        for hook in runner.hooks:
            if isinstance(hook, ResumableTrainingHook):
                hook.restore_signal_handlers()
    return 0


def interrupt_requested(runner: Runner) -> int:
    """The signal a :class:`ResumableTrainingHook` of ``runner`` received, 0 if none."""
    return max([h.interrupt_requested() for h in runner.hooks
                if isinstance(h, ResumableTrainingHook)] or [0])


def report_interrupt(runner: Runner, error: KeyboardInterrupt) -> int:
    """One line on how training stopped and how to continue; the exit code 128 + signal."""
    if isinstance(error, TrainingInterrupted):
        signum, checkpoint = error.signum, error.checkpoint
    else:  # stopped at once (a second Ctrl-C, or before the hooks were set up)
        signum = interrupt_requested(runner) or signal.SIGINT
        checkpoint = latest_checkpoint(runner.work_dir)
    if get_rank() == 0:
        name = signal.Signals(signum).name
        print(f'{name}: training stopped; ' +
              (f'continue with --resume (from {checkpoint})' if checkpoint else
               'no checkpoint saved yet, --resume would start over'), file=sys.stderr)
    return 128 + signum


if __name__ == '__main__':
    sys.exit(main())
