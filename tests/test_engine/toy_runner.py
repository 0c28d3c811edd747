"""A tiny data set and MMEngine Runner (on ``fakes.ToyModel``) to test the glmix_mm hooks in a
real run."""
import itertools

import torch
import torch.nn as nn
from fakes import ToyModel
from mmengine.runner import Runner

import glmix_mm  # noqa: F401  (registers the hooks)
from glmix_mm.runner import use_safe_checkpoint_hook

_names = itertools.count()


class DropoutToy(ToyModel):
    """The toy model with dropout: the random stream decides the weights."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, inputs, targets=None, mode='tensor'):
        return super().forward([self.drop(x) for x in inputs], targets, mode)


def toy_data(n: int = 8) -> list:
    g = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(3, generator=g), targets=torch.randn(2, generator=g))
            for _ in range(n)]


def toy_runner(work_dir: str, by_epoch=True, length=3, interval=1, max_keep=1, hooks=(),
               model=None, loop='EpochBasedTrainLoop', sampler='DefaultSampler', shuffle=False,
               samples=8, **kwargs) -> Runner:
    """A fresh Runner on :func:`toy_data` (batches of 2: 4 iterations per epoch of 8 samples),
    ``length`` epochs or iterations, a checkpoint every ``interval``; its checkpoint hook made
    safe as ``tools/train.py`` does. ``model`` (a class) is built after seeding, so that every
    run starts from the same weights; ``kwargs`` go to the Runner."""
    torch.manual_seed(0)
    model = (model or ToyModel)() if model is None or isinstance(model, type) else model
    train_cfg = dict(type=loop, max_epochs=length) if by_epoch else dict(
        type='IterBasedTrainLoop', max_iters=length)
    default_hooks = dict(
        logger=dict(type='LoggerHook', interval=100),
        checkpoint=dict(type='CheckpointHook', interval=interval, by_epoch=by_epoch,
                        max_keep_ckpts=max_keep))
    use_safe_checkpoint_hook(default_hooks)  # as tools/train.py does
    return Runner(
        model=model,
        work_dir=work_dir,
        experiment_name=f'toy_{next(_names)}',
        train_dataloader=dict(
            dataset=toy_data(samples),
            sampler=dict(type=sampler, shuffle=shuffle),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=kwargs.pop('optim_wrapper',
                                 dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))),
        train_cfg=train_cfg,
        default_hooks=default_hooks,
        custom_hooks=[dict(type='ResumableTrainingHook'), dict(type='CheckpointFitHook'),
                      *hooks],
        randomness=kwargs.pop('randomness', dict(seed=0)),
        default_scope='mmengine',
        **kwargs)
