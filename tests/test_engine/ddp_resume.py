"""Mid-epoch exact resume under 2-process DDP on the CPU (gloo).

Run by ``test_ddp_resume.py`` under torchrun with 2 processes, with a work folder as its
argument: trains the toy model (dropout, shuffled data, a different random stream on each rank)
for 3 epochs straight; again, stopped by SIGUSR1 (sent by every rank to itself after the same
iteration, in the middle of epoch 2); then resumed. Rank 0 prints one JSON line: the files of
the stopped run and whether the resumed run's weights equal the straight run's bit for bit. Each
rank then ends the group as the tools do (``end_distributed``) and writes how many gloo worker
threads are left to ``threads_left_<rank>.txt``: a group that outlives ``main`` (the runners'
reference cycles hold it) races the interpreter's exit and aborts the process now and then.
"""
import json
import os
import os.path as osp
import signal
import sys

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from helpers import gloo_worker_threads
from toy_runner import DropoutToy, toy_runner

from glmix_mm.engine import TrainingInterrupted
from glmix_mm.runner import end_distributed


class SignalAt(Hook):
    """Send SIGUSR1 to this process after training iteration ``at`` (0-based)."""
    priority = 'NORMAL'

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter == self.at:
            os.kill(os.getpid(), signal.SIGUSR1)


def train(work_dir: str, hooks=(), **kwargs):
    runner = toy_runner(
        work_dir, length=3, model=DropoutToy, loop='ResumableEpochBasedTrainLoop',
        sampler='ResumableSampler', shuffle=True, samples=16, launcher='pytorch',
        randomness=dict(seed=0, diff_rank_seed=True), env_cfg=dict(dist_cfg=dict(backend='gloo')),
        cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None)),
        hooks=[dict(type='RNGStateHook'), *hooks], **kwargs)
    try:
        runner.train()
    except TrainingInterrupted:
        return None
    return {k: v.clone() for k, v in runner.model.module.state_dict().items()}


def main() -> None:
    root = sys.argv[1]
    dist.init_process_group('gloo')  # as glmix_mm.runner.setup_distributed does on the CPU
    straight = train(osp.join(root, 'straight'))
    # 16 samples, 2 processes, batches of 2: 4 iterations an epoch; stop after 2 of epoch 2.
    stopped = train(osp.join(root, 'stopped'), hooks=[SignalAt(5)])
    files = sorted(f for f in os.listdir(osp.join(root, 'stopped')) if f.endswith('.pth'))
    resumed = train(osp.join(root, 'stopped'), resume=True)
    same = stopped is None and all(torch.equal(straight[k], resumed[k]) for k in straight)
    flags = [None, None]
    dist.all_gather_object(flags, same)
    rank = dist.get_rank()
    if rank == 0:
        print(json.dumps(dict(files=files, same_weights=flags)), flush=True)
    end_distributed()
    with open(osp.join(root, f'threads_left_{rank}.txt'), 'w') as f:
        f.write(str(gloo_worker_threads()))


if __name__ == '__main__':
    main()
