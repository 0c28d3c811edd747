"""``make_runner``: a tiny MMEngine Runner (three linear layers named like a detector's parts, 8
samples) to test the glmix_mm hooks in-process, in about a second per run."""
import itertools

import pytest
import torch
from mmengine.runner import Runner
from toy_runner import ToyModel, toy_data  # this folder, which pytest puts on sys.path

import glmix_mm  # noqa: F401  (registers the hooks)
from glmix_mm.runner import use_safe_checkpoint_hook

_names = itertools.count()


@pytest.fixture
def make_runner(tmp_path):
    """``make_runner(by_epoch=True, length=3, interval=1, max_keep=1, hooks=(), model=None,
    work_dir=None, loop='EpochBasedTrainLoop', sampler='DefaultSampler', shuffle=False,
    **runner_kwargs)``: a fresh Runner on the toy data (batches of 2: 4 iterations per
    epoch), in ``tmp_path/work`` unless ``work_dir`` is given; its checkpoint hook made safe
    as ``tools/train.py`` does."""

    def make(by_epoch=True, length=3, interval=1, max_keep=1, hooks=(), model=None, work_dir=None,
             loop='EpochBasedTrainLoop', sampler='DefaultSampler', **kwargs):
        torch.manual_seed(0)  # the same initial weights in every run
        train_cfg = dict(type=loop, max_epochs=length) if by_epoch else dict(
            type='IterBasedTrainLoop', max_iters=length)
        default_hooks = dict(
            logger=dict(type='LoggerHook', interval=100),
            checkpoint=dict(type='CheckpointHook', interval=interval, by_epoch=by_epoch,
                            max_keep_ckpts=max_keep))
        use_safe_checkpoint_hook(default_hooks)  # as tools/train.py does
        return Runner(
            model=model or ToyModel(),
            work_dir=work_dir or str(tmp_path / 'work'),
            experiment_name=f'toy_{next(_names)}',
            train_dataloader=dict(
                dataset=toy_data(),
                sampler=dict(type=sampler, shuffle=kwargs.pop('shuffle', False)),
                batch_size=2,
                num_workers=0,
                collate_fn=dict(type='pseudo_collate')),
            optim_wrapper=kwargs.pop(
                'optim_wrapper', dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))),
            train_cfg=train_cfg,
            default_hooks=default_hooks,
            custom_hooks=[dict(type='ResumableTrainingHook'), dict(type='CheckpointFitHook'),
                          *hooks],
            randomness=dict(seed=0),
            default_scope='mmengine',
            **kwargs)

    return make
