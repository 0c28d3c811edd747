"""EagerOptimizerStepHook: MMEngine's ``compile`` option trains with paramwise_cfg groups."""
import pytest
import torch
from mmengine.config import Config, ConfigDict

from glmix_mm.compat import UnsupportedTorchError, has_torch
from glmix_mm.engine.hooks.eager_optimizer_step_hook import MMENGINE_COMPILE_MIN

NEEDS_COMPILE_MIN = pytest.mark.skipif(
    not has_torch(MMENGINE_COMPILE_MIN), reason="MMEngine's compile option needs PyTorch >= "
    f'{MMENGINE_COMPILE_MIN}: refused on this torch '
    '(test_old_torch_refuses_the_option_in_one_line)')

# As a config file gives it (a ConfigDict): the parameter groups become ConfigDicts too.
PARAMWISE = ConfigDict(
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., custom_keys={'head': dict(lr_mult=0.1)}))


def compiled_runner(make_runner, hooks):
    torch._dynamo.reset()
    return make_runner(length=1, hooks=hooks, optim_wrapper=PARAMWISE.copy(),
                       cfg=Config(dict(compile=dict(backend='eager'))))


@NEEDS_COMPILE_MIN
def test_compiled_train_step_updates_the_weights_with_the_hook(make_runner):
    runner = compiled_runner(make_runner, [dict(type='EagerOptimizerStepHook')])
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    assert getattr(runner.model.train_step, '__wrapped__', None) is not None  # compiled
    assert runner.optim_wrapper.update_params._glmix_mm_eager
    after = runner.model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    assert runner.iter == 4


@pytest.mark.skipif(not has_torch('2.12'), reason='the failure this test documents was seen with '
                    "torch 2.12's dynamo; torch 2.1's traces MMEngine's optimizer step without it")
def test_without_the_hook_dynamo_fails_inside_the_optimizer(make_runner):
    """What the hook is for: if this starts passing, MMEngine or dynamo no longer need it."""
    runner = compiled_runner(make_runner, [])
    with pytest.raises(Exception) as error:
        try:
            runner.train()
        finally:  # as tools/train.py does: the run stopped before after_run
            for hook in runner.hooks:
                if hasattr(hook, 'restore_signal_handlers'):
                    hook.restore_signal_handlers()
    assert 'torch._dynamo' in type(error.value).__module__ or 'dynamo' in str(error.value), \
        repr(error.value)


def test_old_torch_refuses_the_option_in_one_line(make_runner, monkeypatch):
    runner = compiled_runner(make_runner, [dict(type='EagerOptimizerStepHook')])
    monkeypatch.setattr(torch, '__version__', '2.1.2+cu121')
    with pytest.raises(UnsupportedTorchError) as error:
        runner.call_hook('before_run')
    assert str(error.value) == (
        f"MMEngine's compile option (compile= in the config) needs PyTorch >= "
        f'{MMENGINE_COMPILE_MIN} (found 2.1.2+cu121); upgrade torch to use it.')


def test_the_hook_does_nothing_without_compile(make_runner):
    runner = make_runner(length=1, hooks=[dict(type='EagerOptimizerStepHook')])
    runner.train()
    assert not hasattr(runner.optim_wrapper.update_params, '_glmix_mm_eager')
