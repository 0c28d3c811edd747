"""Mixed precision without a GPU: bfloat16 autocast of the backbone and neck on the CPU.

On a GPU, ``--amp`` is MMEngine's float16 autocast of the whole model (``AmpOptimWrapper`` with
a loss scaler for training, ``test_cfg.fp16`` for testing). Neither works on the CPU:
``AmpOptimWrapper`` refuses to start without a GPU, and under a whole-model CPU autocast MMCV's
CPU detection ops (NMS, RoIAlign) get bfloat16 tensors they have no kernels for ("expected
scalar type Float but found BFloat16"). :class:`CPUAutocastHook` autocasts only the feature
extractor, the backbone and the neck, where nearly all the compute is, and hands the heads
float32 features. bfloat16 keeps float32's exponent range, so training needs no loss scaler;
weights, gradients and optimizer states stay float32.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.utils import apply_to

from glmix_mm.registry import register_hook


def _to_float32(output):
    return apply_to(output, lambda x: isinstance(x, torch.Tensor) and x.is_floating_point(),
                    lambda x: x.float())


def autocast_submodules(model: nn.Module,
                        names: Sequence[str] = ('backbone', 'neck'),
                        dtype: torch.dtype = torch.bfloat16) -> List:
    """Run the forward of ``model.<name>`` for each of ``names`` under CPU autocast and return
    float32 outputs. Returns the hook handles (``handle.remove()`` undoes it)."""
    handles = []
    for name in names:
        module = getattr(model, name, None)
        if not isinstance(module, nn.Module):
            continue
        contexts = []

        def enter(mod, args, contexts=contexts):
            contexts.append(torch.autocast('cpu', dtype=dtype))
            contexts[-1].__enter__()

        def leave(mod, args, output, contexts=contexts):
            contexts.pop().__exit__(None, None, None)
            return _to_float32(output)

        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave, always_call=True))
    return handles


@register_hook
class CPUAutocastHook(Hook):
    """Autocast the model's backbone and neck to bfloat16 on the CPU, in training and testing
    (``tools/train.py --amp`` / ``tools/test.py --amp`` without a GPU). See
    :mod:`glmix_mm.engine.hooks.cpu_autocast_hook`.

    Args:
        submodules (Sequence[str]): Attributes of the model to autocast.
            Defaults to ``('backbone', 'neck')``.
    """
    priority = 'VERY_HIGH'

    def __init__(self, submodules: Sequence[str] = ('backbone', 'neck')) -> None:
        self.submodules = tuple(submodules)
        self._handles: List = []

    def before_run(self, runner) -> None:
        if torch.cuda.is_available():
            return  # the GPU path is MMEngine's own AMP
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._handles = autocast_submodules(model, self.submodules)
        found = [n for n in self.submodules if isinstance(getattr(model, n, None), nn.Module)]
        print_log(f'--amp on the CPU: {" and ".join(found)} under bfloat16 autocast, the '
                  'rest in float32.', logger='current')

    def after_run(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
