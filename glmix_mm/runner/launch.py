"""Starting and ending a distributed run: torchrun (``--launcher pytorch``) and Slurm
(``--launcher slurm``), on GPUs and on CPU-only machines (gloo)."""
import gc
import os
import shutil
import subprocess
import traceback
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
from mmengine.config import Config

from glmix_mm.utils.config_checks import ConfigError


class LaunchError(ConfigError):
    """The launcher's environment is incomplete (e.g. ``--launcher slurm`` outside ``srun``)."""


# What each launcher must find in the environment, what sets it, and how to start instead.
LAUNCH_VARIABLES = dict(
    slurm=(('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'), 'srun',
           'start it with srun (tools/slurm_train.sh does), or use --launcher none / pytorch'),
    pytorch=(('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'), 'torchrun',
             'start it with tools/dist_train.sh (torchrun), or use --launcher none'))


def slurm_master_addr(node_list: str) -> str:
    """The first host of a Slurm node list (``node[1-4]`` -> ``node1``), through
    ``scontrol show hostnames``, as MMEngine's Slurm launcher does."""
    if shutil.which('scontrol') is None:
        raise LaunchError('--launcher slurm: scontrol is not on PATH, so the master node of '
                          f'{node_list} is unknown; set MASTER_ADDR, or run on a Slurm node.')
    hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True,
                           text=True, timeout=60).stdout.split()
    if not hosts:
        raise LaunchError(f'--launcher slurm: scontrol show hostnames {node_list} names no '
                          'host; set MASTER_ADDR.')
    return hosts[0]


def check_launch_environment(launcher: str) -> None:
    """Refuse a launcher whose variables are missing, in one line.

    Raises:
        LaunchError: ``--launcher slurm`` without ``SLURM_PROCID`` / ``SLURM_NTASKS`` /
            ``SLURM_NODELIST`` (not started by ``srun``), or ``--launcher pytorch`` without
            torchrun's variables.
    """
    if launcher not in LAUNCH_VARIABLES:
        return
    variables, starter, fix = LAUNCH_VARIABLES[launcher]
    missing = [v for v in variables if v not in os.environ]
    if missing:
        raise LaunchError(f'--launcher {launcher} needs {", ".join(missing)}, which {starter} '
                          f'sets: {fix}.')


def slurm_to_torchrun_variables() -> None:
    """Set torchrun's variables from Slurm's, as MMEngine's Slurm launcher does (its own set-up
    needs a GPU): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` from ``SLURM_PROCID``,
    ``SLURM_NTASKS``, ``SLURM_LOCALID``; ``MASTER_ADDR`` (unless set) the first node of
    ``SLURM_NODELIST``; ``MASTER_PORT`` (unless set) 29500."""
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = slurm_master_addr(os.environ['SLURM_NODELIST'])
    os.environ.setdefault('MASTER_PORT', '29500')


def setup_distributed(cfg: Config) -> None:
    """Check the launcher's environment, and let a distributed launch (torchrun or Slurm) run
    on machines without a GPU.

    MMEngine's launchers assume one GPU per process (they call ``torch.cuda.set_device`` and
    give DDP a device id). Without a GPU, start the gloo process group here (MMEngine then
    uses it as it is) and wrap the model in CPU DDP (no device ids). With GPUs, MMEngine's own
    set-up runs (its Slurm launcher reads the same variables).

    Raises:
        LaunchError: The launcher's environment is incomplete.
    """
    check_launch_environment(cfg.launcher)
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher == 'slurm':
        slurm_to_torchrun_variables()
    if not dist.is_initialized():
        dist.init_process_group('gloo')  # RANK, WORLD_SIZE, MASTER_ADDR from the launcher
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def end_distributed() -> None:
    """Destroy the default process group, if one was started, while Python still runs.

    Destroying it joins the worker threads of its gloo backend here. Left to interpreter exit,
    a worker that drops the last reference to a collective of the backward pass (DDP's bucket
    all-reduces hold a Python object, the autograd context) after finalisation has begun is
    ended by Python inside that C++ destructor: "terminate called without an active exception"
    and SIGABRT, although the run has finished. The group is destroyed only with its last
    reference, and the DDP-wrapped model holds one: release the runner first.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()  # a runner is full of reference cycles; its DDP model holds the group
    dist.destroy_process_group()


@contextmanager
def distributed_session(cfg: Config) -> Iterator[None]:
    """Where a tool builds and runs its runner: a distributed launch starts (its environment
    checked, gloo on the CPU: :func:`setup_distributed`) and always ends cleanly
    (:func:`end_distributed`).

    Build and run the runner in a function called inside the block, so that no reference to
    it outlives the block. If the block raises, the finished frames of the traceback let go of
    their locals (the runner among them) before the group is destroyed; the traceback still
    prints as usual.

    Args:
        cfg (Config): The full config, with ``launcher`` set (:func:`apply_common_args`).
    """
    setup_distributed(cfg)
    try:
        yield
    except BaseException as error:
        traceback.clear_frames(error.__traceback__)
        raise
    finally:
        end_distributed()
