"""CheckpointFitHook in a real Runner: a ``load_from``, ``--resume`` or test checkpoint that does
not fit is refused with the key report, except for the class-dependent head layers when
fine-tuning from ``load_from`` (the rules themselves: tests/test_checkpoint/test_fit.py)."""
import os.path as osp

import pytest
import torch
from fakes import ToyModel

from glmix_mm.engine import CheckpointMismatchError


def saved(model, path) -> str:
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def test_runner_refuses_wrong_load_from_and_fine_tunes_another_class_count(
        make_runner, tmp_path, capfd):
    other_arch = saved(ToyModel(width=5), tmp_path / 'other.pth')
    with pytest.raises(CheckpointMismatchError, match='other.pth does not fit the model'):
        make_runner(length=1, load_from=other_arch).train()

    source = ToyModel(num_classes=5)
    runner = make_runner(length=1, load_from=saved(source, tmp_path / 'coco.pth'))
    runner.train()  # fine-tuned: 4 SGD steps from the loaded backbone, fresh 2-class head
    assert 'skipped 2 class-dependent head tensors' in capfd.readouterr().out
    assert runner.model.head.weight.shape == (2, 4)


def test_runner_refuses_a_resume_or_test_checkpoint_of_another_model(make_runner, tmp_path):
    runner = make_runner(length=1)
    runner.train()
    ckpt = osp.join(runner.work_dir, 'epoch_1.pth')
    with pytest.raises(CheckpointMismatchError, match='--resume continues a run'):
        make_runner(length=2, resume=True, model=ToyModel(num_classes=5)).train()
    # Runner.test() in the same mode: every key must fit.
    from mmengine.runner import Runner
    tester = Runner(model=ToyModel(num_classes=5), work_dir=str(tmp_path / 't'),
                    load_from=ckpt, custom_hooks=[dict(type='CheckpointFitHook')],
                    experiment_name='toy_test', default_scope='mmengine')
    with pytest.raises(CheckpointMismatchError, match='allow-partial'):
        tester.load_or_resume()
