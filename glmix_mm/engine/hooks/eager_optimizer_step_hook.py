"""MMEngine's ``compile`` option with the optimizer update left eager."""
import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper

from glmix_mm.compat import require_torch
from glmix_mm.registry import register_hook

#: MMEngine's ``compile`` option: torch 2.1's dynamo fails on OpenMMLab's models (MMEngine's
#: ``stack_batch``, open-mmlab/mmdetection#11398; with that left eager, on mmdet's typing
#: annotations next); run on 2.12.1.
MMENGINE_COMPILE_MIN = '2.2'


@register_hook
class EagerOptimizerStepHook(Hook):
    """Keep the optimizer update out of the ``train_step`` that MMEngine compiles.

    With ``compile=True`` (or a dict of ``torch.compile`` options) MMEngine's runner wraps the
    whole ``model.train_step`` in ``torch.compile``, the call of
    ``optim_wrapper.update_params`` (backward, optimizer step, zeroing) included. Dynamo then
    traces into the optimizer: it fails on the parameter groups that MMEngine's optimizer
    constructor builds from ``paramwise_cfg`` (``ConfigDict`` objects), and would recompile the
    step whenever a scheduler changes the learning rate. This hook marks the runner's
    ``update_params`` with :func:`torch.compiler.disable` before the runner compiles, so the
    compiled region is the data preprocessor, the forward pass and the losses; backward still
    runs the compiled backward graph. Without ``compile`` in the config it does nothing.

    On a torch older than :data:`MMENGINE_COMPILE_MIN` it refuses the option in one line
    (:class:`~glmix_mm.compat.UnsupportedTorchError`) before anything is compiled.
    """
    priority = 'VERY_LOW'

    def before_run(self, runner) -> None:
        compile_cfg = runner.cfg.get('compile')
        if compile_cfg is None or compile_cfg is False:
            return
        require_torch(MMENGINE_COMPILE_MIN, "MMEngine's compile option (compile= in the config)")
        optim_wrapper = getattr(runner, 'optim_wrapper', None)
        if not isinstance(optim_wrapper, OptimWrapper):
            return
        if not getattr(optim_wrapper.update_params, '_glmix_mm_eager', False):
            eager = torch.compiler.disable(optim_wrapper.update_params)
            eager._glmix_mm_eager = True
            optim_wrapper.update_params = eager
