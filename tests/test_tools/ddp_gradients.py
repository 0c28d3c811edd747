"""One DDP backward of a channels-last GLNet on the CPU (gloo), compared with one process.

Run by ``test_resume_and_dist.py`` under torchrun with 2 processes (on one node, or as two
nodes over 127.0.0.1) and by ``test_slurm.py`` as a 2-task srun job: each process takes one
image of a 2-image batch; rank 0 then computes the gradients of the whole batch without DDP
and prints one JSON line: the largest relative gradient difference, and the parameters whose
gradient strides differ from their own (those DDP copies through a mismatching bucket view).
The patch embeddings use LayerNorm, so that no batch statistics tie the images together.
"""
import json
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from glmix_mm.models.glnet import GLNet
from glmix_mm.runner.launch import end_distributed, slurm_to_torchrun_variables


def build() -> GLNet:
    torch.manual_seed(0)
    return GLNet('stl', out_norm=None, norm_cfg=dict(type='LN2d', eps=1e-6),
                 channels_last=True)


def loss_of(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Mean over the images, so that DDP's average over processes is the whole batch's."""
    return sum(out.pow(2).mean() for out in model(images))


def main() -> None:
    if 'RANK' not in os.environ:  # started by srun, not torchrun
        slurm_to_torchrun_variables()
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    images = torch.randn(world, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    ddp = DistributedDataParallel(build())
    loss_of(ddp, images[rank:rank + 1]).backward()
    if rank == 0:
        single = build()
        loss_of(single, images).backward()
        errors = [((p.grad - q.grad).abs().max() / q.grad.abs().max().clamp_min(1e-12)).item()
                  for p, q in zip(ddp.module.parameters(), single.parameters())]
        strided = [name for name, p in ddp.module.named_parameters()
                   if p.grad.stride() != p.stride()]
        print(json.dumps(dict(max_rel_error=max(errors), params=len(errors), world_size=world,
                              grad_strides_differ=strided)), flush=True)
    del ddp
    end_distributed()  # as the tools end a run: the group's threads joined before exit


if __name__ == '__main__':
    main()
