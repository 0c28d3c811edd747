"""ResumableTrainingHook: real SIGINT / SIGTERM / SIGUSR1 sent to this process during a real (tiny)
MMEngine training run stop it at an iteration boundary, and --resume ends with the weights of
the uninterrupted run."""
import os
import os.path as osp
import signal

import pytest
import torch
from mmengine.hooks import Hook

from toy_runner import DropoutToy

from glmix_mm.engine import ResumableTrainingHook, TrainingInterrupted


class SignalAt(Hook):
    """Send ``signals`` to this process after training iteration ``at`` (0-based) ends."""
    priority = 'NORMAL'  # before ResumableTrainingHook (LOWEST) looks at the flag

    def __init__(self, at: int, signals=(signal.SIGTERM, )) -> None:
        self.at, self.signals = at, signals

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter == self.at:
            for signum in self.signals:
                os.kill(os.getpid(), signum)


def final_weights(runner) -> dict:
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), 'resumed run ended with other weights'


def files(runner) -> list:
    return sorted(f for f in os.listdir(runner.work_dir) if f.endswith(('.pth', '.tmp')))


def test_iteration_based_run_saves_the_last_iteration_and_resumes_exactly(make_runner,
                                                                          tmp_path):
    straight = make_runner(by_epoch=False, length=10, interval=3, work_dir=str(tmp_path / 's'))
    straight.train()

    runner = make_runner(by_epoch=False, length=10, interval=3, hooks=[SignalAt(4)])
    with pytest.raises(TrainingInterrupted) as stop:
        runner.train()
    assert stop.value.signum == signal.SIGTERM
    # Stopped after 5 iterations, which were saved (iter_3 was the periodic one, max_keep=1).
    assert files(runner) == ['iter_5.pth']
    assert stop.value.checkpoint == osp.join(runner.work_dir, 'iter_5.pth')
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back

    resumed = make_runner(by_epoch=False, length=10, interval=3, resume=True)
    resumed.train()
    assert resumed.iter == 10
    assert_same(final_weights(straight), final_weights(resumed))


@pytest.mark.parametrize('at,kept', [(5, ['epoch_1.pth']), (7, ['epoch_2.pth'])])
def test_epoch_based_run_keeps_the_last_complete_epoch(make_runner, tmp_path, at, kept):
    straight = make_runner(length=3, work_dir=str(tmp_path / 's'))
    straight.train()

    # SIGINT in the middle of epoch 2 loses it; in its last iteration, epoch 2 is saved.
    runner = make_runner(length=3, hooks=[SignalAt(at, (signal.SIGINT, ))])
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        runner.train()
    assert stop.value.signal_name == 'SIGINT' and files(runner) == kept
    assert signal.getsignal(signal.SIGINT) is before  # handlers put back

    resumed = make_runner(length=3, resume=True)
    resumed.train()
    assert resumed.epoch == 3
    assert_same(final_weights(straight), final_weights(resumed))


def test_second_signal_stops_at_once_and_the_first_is_ignored_in_workers(make_runner):
    runner = make_runner(length=3, hooks=[SignalAt(1, (signal.SIGTERM, signal.SIGTERM))])
    with pytest.raises(KeyboardInterrupt) as stop:
        runner.train()
    assert not isinstance(stop.value, TrainingInterrupted)  # raised by the second signal
    assert files(runner) == []  # nothing half-written
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    hook = ResumableTrainingHook()
    hook._pid = os.getpid() + 1  # as in a forked data-loader worker
    hook._on_signal(signal.SIGTERM, None)
    assert hook.interrupt_requested() == 0


@pytest.mark.parametrize('at', [5, 6])
def test_mid_epoch_signal_saves_that_iteration_and_resumes_exactly(make_runner, tmp_path, at):
    def make(hooks=(), **kwargs):
        return make_runner(length=3, model=DropoutToy, loop='ResumableEpochBasedTrainLoop',
                           sampler='ResumableSampler', shuffle=True,
                           hooks=[dict(type='RNGStateHook'), *hooks], **kwargs)

    straight = make(work_dir=str(tmp_path / 's'))
    straight.train()

    runner = make(hooks=[SignalAt(at, (signal.SIGUSR1, ))])
    with pytest.raises(TrainingInterrupted) as stop:
        runner.train()
    done = at + 1 - 4  # iterations of epoch 2 trained (4 an epoch)
    assert files(runner) == ['epoch_1.pth', f'epoch_2_iter_{done}.pth']
    assert stop.value.checkpoint == osp.join(runner.work_dir, f'epoch_2_iter_{done}.pth')

    resumed = make(resume=True)
    resumed.train()
    assert resumed.epoch == 3 and resumed.iter == 12
    assert_same(final_weights(straight), final_weights(resumed))
    assert files(resumed) == ['epoch_3.pth']  # the interruption's checkpoint was replaced


def test_resumable_sampler_leaves_out_what_a_bucketing_batch_sampler_emitted():
    """As mmdet's AspectRatioBatchSampler: batches form per bucket, so the samples trained on
    are not a prefix of the order; the rest comes out in the uninterrupted order."""
    from glmix_mm.engine import ResumableSampler

    def buckets(sampler, size=2):
        pending = {0: [], 1: []}
        for index in sampler:
            bucket = pending[index % 3 == 0]
            bucket.append(index)
            if len(bucket) == size:
                yield bucket[:]
                del bucket[:]
        left = pending[0] + pending[1]
        while left:
            yield left[:size]
            left = left[size:]

    sampler = ResumableSampler(list(range(11)), shuffle=True, seed=3)
    sampler.set_epoch(2)
    batches = list(buckets(sampler))
    for done in range(len(batches) + 1):
        sampler.skip([i for batch in batches[:done] for i in batch])
        assert list(buckets(sampler)) == batches[done:]
        assert len(sampler) == 11
    assert list(buckets(sampler)) == batches  # skipping lasts one pass
