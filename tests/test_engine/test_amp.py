"""CPU --amp: the backbone and neck compute in bfloat16, the heads get float32 features."""
import pytest
import torch
from fakes import ToyModel

from glmix_mm.compat import cpu_autocast_enabled
from glmix_mm.engine import autocast_submodules


def test_backbone_and_neck_autocast_heads_float32():
    model = ToyModel()
    seen = {}
    for name in ('backbone', 'neck', 'head'):
        getattr(model, name).register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, (args[0].dtype, out.dtype)))
    handles = autocast_submodules(model)
    out = model([torch.randn(3)])
    # Our hook returns float32 after the observer hooks saw the bfloat16 result.
    assert seen['backbone'] == (torch.float32, torch.bfloat16)
    assert seen['neck'] == (torch.float32, torch.bfloat16)
    assert seen['head'] == (torch.float32, torch.float32) and out.dtype == torch.float32
    loss = out.sum()
    loss.backward()
    assert model.backbone.weight.grad.dtype == torch.float32  # weights stay float32

    for handle in handles:
        handle.remove()
    model([torch.randn(3)])
    assert seen['backbone'] == (torch.float32, torch.float32)


def test_autocast_ends_when_the_forward_raises():
    model = ToyModel()
    autocast_submodules(model)
    with pytest.raises(RuntimeError):
        model([torch.randn(5)])  # wrong input width
    assert not cpu_autocast_enabled()
