"""Fake upstream checkpoints and small models shared by the tests (importable as ``fakes``:
pytest puts ``tests/``, the folder of the root ``conftest.py``, on the path; the scripts that
tests start put it on ``PYTHONPATH``)."""
from functools import lru_cache
from typing import Dict

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from glmix_mm.models import GLNet
from glmix_mm.models.conformer import Conformer


def random_upstream_checkpoint(arch: str, seed: int = 0) -> dict:
    """An ImageNet checkpoint in the released layout: backbone, pre-head BN and head weights
    (and the dense head ``tklb_aux_head`` of the token-labeling archs)."""
    torch.manual_seed(seed)
    model = GLNet(arch, out_norm=None)
    dims = model.arch_settings['embed_dims'][-1]
    # Contiguous, as the authors' (NCHW) model saves them; ours stores kernels channels-last.
    state_dict = {k: torch.randn(v.shape) * 0.1 if v.is_floating_point() else v.contiguous()
                  for k, v in model.state_dict().items()}
    for k in state_dict:
        if k.endswith('running_var'):
            state_dict[k] = torch.rand_like(state_dict[k]) + 0.5
    state_dict.update({
        'norm.weight': torch.ones(dims), 'norm.bias': torch.zeros(dims),
        'norm.running_mean': torch.zeros(dims), 'norm.running_var': torch.ones(dims),
        'head.weight': torch.randn(1000, dims), 'head.bias': torch.zeros(1000)})
    if arch.endswith('_tklb'):
        state_dict.update({'tklb_aux_head.weight': torch.randn(1000, dims),
                           'tklb_aux_head.bias': torch.randn(1000)})
    return {'model': state_dict, 'epoch': 299}


class ToyModel(BaseModel):
    """``backbone`` -> ``neck`` -> ``head`` (``num_classes`` outputs), squared-error loss."""

    def __init__(self, width: int = 4, num_classes: int = 2) -> None:
        super().__init__()
        self.backbone = nn.Linear(3, width)
        self.neck = nn.Linear(width, 4)
        self.head = nn.Linear(4, num_classes)

    def forward(self, inputs, targets=None, mode='tensor'):
        x = self.head(self.neck(self.backbone(torch.stack(inputs))))
        if mode == 'loss':
            return dict(loss=((x - torch.stack(targets)[:, :x.shape[1]])**2).mean())
        return x


# The authors' names inside transformer blocks, for checkpoints in their format.
UPSTREAM_NAMES = {'.ln1.': '.norm1.', '.ln2.': '.norm2.', '.ffn.layers.0.0.': '.mlp.fc1.',
                  '.ffn.layers.1.': '.mlp.fc2.'}


@lru_cache()
def build(arch: str = 'tiny', patch_size: int = 16) -> Conformer:
    """A model with random weights and random BN statistics, in eval mode (cached)."""
    torch.manual_seed(0)
    model = Conformer(arch=arch, patch_size=patch_size)
    randomize(model)
    return model.eval()


def randomize(model: nn.Module) -> None:
    """Random weights, biases and BN running statistics."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith('running_var'):
                tensor.uniform_(0.5, 2.0)
            elif tensor.is_floating_point():
                tensor.normal_(0, 0.05)


def randomize_parameters(module: nn.Module, seed: int = 0) -> nn.Module:
    """``module`` with random parameters drawn from a generator of its own (``seed``: the same
    weights whatever ran before), N(0, 0.3), scalars offset by 0.5; buffers kept. Returns it in
    eval mode. (:func:`randomize` draws from the global generator and sets buffers too.)"""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (0.5 if p.dim() == 0 else 0))
    return module.eval()


def heads(arch: str) -> Dict[str, torch.Tensor]:
    """Classification parts of an authors' model (1000 classes)."""
    settings = Conformer.arch_zoo[arch]
    embed, conv = settings['embed_dims'], 256 * settings['channel_ratio']
    return {
        'trans_norm.weight': torch.ones(embed), 'trans_norm.bias': torch.zeros(embed),
        'trans_cls_head.weight': torch.randn(1000, embed),
        'trans_cls_head.bias': torch.zeros(1000),
        'conv_cls_head.weight': torch.randn(1000, conv), 'conv_cls_head.bias': torch.zeros(1000)
    }


def to_upstream(state_dict: Dict[str, torch.Tensor], arch: str) -> Dict[str, torch.Tensor]:
    """Our weights as an authors' classification checkpoint (plain state dict with heads)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith('trans_1.') or '.trans_block.' in key:
            for ours, theirs in UPSTREAM_NAMES.items():
                key = key.replace(ours, theirs)
        out[key] = value
    out.update(heads(arch))
    return out


def load_into(path, arch: str = 'tiny', patch_size: int = 16) -> Conformer:
    """A model initialised from the checkpoint at ``path``, in eval mode."""
    model = Conformer(arch=arch, patch_size=patch_size,
                      init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    return model.eval()


def features(model: nn.Module, x: torch.Tensor):
    with torch.no_grad():
        return model(x)
