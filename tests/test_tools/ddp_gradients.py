"""One DDP backward of a channels-last GLNet on the CPU (gloo), compared with one process.

Run by ``test_resume_and_dist.py`` under torchrun with 2 processes: each process takes one
image of a 2-image batch; rank 0 then computes the gradients of the whole batch without DDP
and prints one JSON line: the largest relative gradient difference, and the parameters whose
gradient strides differ from their own (those DDP copies through a mismatching bucket view).
The patch embeddings use LayerNorm, so that no batch statistics tie the images together.
"""
import json
import os.path as osp
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from glmix_mm.models.glnet import GLNet  # noqa: E402


def build() -> GLNet:
    torch.manual_seed(0)
    return GLNet('stl', out_norm=None, norm_cfg=dict(type='LN2d', eps=1e-6),
                 channels_last=True)


def loss_of(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Mean over the images, so that DDP's average over processes is the whole batch's."""
    return sum(out.pow(2).mean() for out in model(images))


def main() -> None:
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
        print(json.dumps(dict(max_rel_error=max(errors), params=len(errors),
                              grad_strides_differ=strided)), flush=True)
    del ddp
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
