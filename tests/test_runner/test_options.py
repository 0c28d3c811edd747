"""What tools/train.py changes in a config: the safe checkpoint hook chosen by type, the epoch
loop and sampler that resume inside an epoch, and the safety hooks added once."""
import os.path as osp

import pytest
from helpers import ROOT
from mmengine.config import Config

from glmix_mm.runner import use_resumable_loop, use_safe_checkpoint_hook


def test_checkpoint_hook_type_becomes_safe_with_its_arguments():
    hooks = dict(checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=3),
                 logger=dict(type='LoggerHook'))
    use_safe_checkpoint_hook(hooks)
    assert hooks['checkpoint'] == dict(type='SafeCheckpointHook', interval=2, max_keep_ckpts=3)
    assert hooks['logger'] == dict(type='LoggerHook')
    custom = dict(checkpoint=dict(type='MyCheckpointHook'))
    use_safe_checkpoint_hook(custom)
    assert custom['checkpoint']['type'] == 'MyCheckpointHook'  # a user's own hook stays


@pytest.mark.parametrize('train_cfg', [
    dict(type='EpochBasedTrainLoop', max_epochs=12),
    dict(by_epoch=True, max_epochs=12),
    dict(type='ResumableEpochBasedTrainLoop', max_epochs=12),
])
def test_epoch_loop_and_default_sampler_become_resumable(train_cfg):
    cfg = Config(dict(train_cfg=train_cfg, train_dataloader=dict(
        sampler=dict(type='DefaultSampler', shuffle=True))))
    use_resumable_loop(cfg)
    assert cfg.train_cfg == dict(type='ResumableEpochBasedTrainLoop', max_epochs=12)
    assert cfg.train_dataloader.sampler == dict(type='ResumableSampler', shuffle=True)


def test_iteration_loops_and_other_samplers_stay():
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=10),
                      train_dataloader=dict(sampler=dict(type='InfiniteSampler'))))
    use_resumable_loop(cfg)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'


def test_the_configs_and_the_tools_add_one_list_of_safety_hooks():
    """configs/_base_/glnet_common.py lists SAFETY_HOOKS (the configs' hooks added once: the
    next test); add_safety_hooks adds all of them to a plain config."""
    from glmix_mm.runner import SAFETY_HOOKS, add_safety_hooks
    assert 'RNGStateHook' in SAFETY_HOOKS
    common = Config.fromfile(f'{ROOT}/configs/_base_/glnet_common.py')
    assert [h['type'] for h in common.custom_hooks] == list(SAFETY_HOOKS)
    assert 'SAFETY_HOOKS' not in common and 'name' not in common
    plain = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    add_safety_hooks(plain)
    assert [h['type'] for h in plain.custom_hooks] == ['EMAHook', *SAFETY_HOOKS]


@pytest.mark.parametrize('config', ['configs/cascade_maskrcnn_glnet_4g_coco.py',
                                    'configs/maskrcnn_glnet_4g_coco.py'])
def test_tools_give_every_config_the_safety_hooks_once(config):
    from glmix_mm.runner import add_safety_hooks
    cfg = Config.fromfile(osp.join(ROOT, config))
    add_safety_hooks(cfg, allow_partial=True)
    types = [h['type'] for h in cfg.custom_hooks]
    assert types.count('CheckpointFitHook') == 1 and types.count('ResumableTrainingHook') == 1
    assert [h for h in cfg.custom_hooks if h['type'] == 'CheckpointFitHook'][0]['allow_partial']
