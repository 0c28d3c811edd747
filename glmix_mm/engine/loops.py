"""Epoch-based training that resumes inside an epoch, exactly.

MMEngine resumes an epoch-based run at the start of the epoch in progress: a checkpoint taken
inside an epoch would train its first batches twice. :class:`ResumableEpochBasedTrainLoop`
continues at the batch after the last one trained, with the batches in the order the
uninterrupted epoch had, and with the random states of the moment the checkpoint was taken
(:class:`~glmix_mm.engine.RNGStateHook`), so the resumed run ends with the uninterrupted run's
weights. It needs the batches of an epoch to be known before they are loaded: the data
loader's sampler is a :class:`ResumableSampler` (a ``DefaultSampler`` that can leave out the
samples already trained on); any batch sampler (``AspectRatioBatchSampler`` included) works on
top of it.
"""
import collections
import itertools
from typing import List

from mmengine.dataset import DefaultSampler
from mmengine.logging import print_log
from mmengine.registry import DATA_SAMPLERS, LOOPS
from mmengine.runner import EpochBasedTrainLoop

from .mmengine_internals import end_epoch
from .random_states import rng_state, set_rng_state

WARNING = 30


@DATA_SAMPLERS.register_module()
class ResumableSampler(DefaultSampler):
    """:class:`mmengine.dataset.DefaultSampler` that can leave out samples of one epoch.

    :meth:`skip` names samples already trained on; the next pass over the sampler (the rest of
    that epoch) yields the others, in the same order; its length stays the epoch's, so that the
    loop's batch numbers and the hooks' "last iteration of the epoch" stay right. Without a
    call to :meth:`skip` it is a ``DefaultSampler``. Same arguments.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._skip: collections.Counter = collections.Counter()

    def skip(self, indices: List[int]) -> None:
        """Leave ``indices`` out of the next pass, each as often as it is listed (with
        ``round_up`` an index can come twice in an epoch; the first comes out first)."""
        self._skip = collections.Counter(indices)

    def __iter__(self):
        skip, self._skip = self._skip, collections.Counter()
        for index in super().__iter__():
            if skip[index]:
                skip[index] -= 1
                continue
            yield index


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """:class:`mmengine.runner.EpochBasedTrainLoop` that resumes inside an epoch.

    A checkpoint whose ``meta.iter`` lies inside an epoch (``meta.epoch`` epochs done, then
    ``meta.iter - meta.epoch * len(dataloader)`` batches of the next) resumes with the next
    batch of that epoch. :class:`~glmix_mm.engine.ResumableTrainingHook` saves such a
    checkpoint when a signal stops the run inside an epoch. Same arguments as
    ``EpochBasedTrainLoop``; our configs use it (``configs/_base_/``).
    """

    @property
    def batches_done_in_epoch(self) -> int:
        """Batches of the epoch in progress already trained on."""
        return self.iter - self.epoch * len(self.dataloader)

    def run_epoch(self) -> None:
        done = self.batches_done_in_epoch
        if done <= 0:
            return super().run_epoch()
        self.runner.call_hook('before_train_epoch')  # the sampler's epoch is set here
        self.runner.model.train()
        print_log(f'Resuming inside epoch {self.epoch + 1}: {done} of its '
                  f'{len(self.dataloader)} iterations were trained, skipping them.',
                  logger='current')
        for idx, data_batch in enumerate(self._remaining_batches(done), start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        end_epoch(self)

    def _remaining_batches(self, done: int):
        """The data loader's batches after the first ``done`` of this epoch."""
        batch_sampler = self.dataloader.batch_sampler
        sampler = getattr(batch_sampler, 'sampler', None)
        if not isinstance(sampler, ResumableSampler):
            print_log(f'The sampler {type(sampler).__name__} cannot skip samples: loading and '
                      f'discarding {done} batches (random augmentations then differ from the '
                      'uninterrupted run; use ResumableSampler).', logger='current',
                      level=WARNING)
            return itertools.islice(self.dataloader, done, None)
        # Indices only: one pass of the batch sampler over the epoch's order (to its end, so
        # that a batch sampler with state, such as mmdet's AspectRatioBatchSampler, is reset).
        trained = [i for n, batch in enumerate(batch_sampler) if n < done for i in batch]
        sampler.skip(trained)
        state = rng_state()
        batches = iter(self.dataloader)
        set_rng_state(state)  # as at the checkpoint: creating the iterator draws a seed
        return batches
