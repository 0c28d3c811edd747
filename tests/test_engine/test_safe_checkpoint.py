"""SafeCheckpointHook and --resume: an interrupted checkpoint write never replaces the last good
checkpoint, and a dangling last_checkpoint falls back to the newest complete one."""
import os
import os.path as osp

import pytest
import torch
from mmengine.fileio import LocalBackend

from glmix_mm.engine import ResumeError, SafeCheckpointHook, is_complete_checkpoint
from glmix_mm.engine.resume import newest_complete_checkpoint


def save_truncated(path: str, like: str) -> None:
    data = open(like, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def test_complete_and_newest_checkpoints(tmp_path):
    torch.save({'state_dict': {'w': torch.ones(3)}}, tmp_path / 'epoch_3.pth')
    torch.save({'state_dict': {'w': torch.ones(3)}}, tmp_path / 'epoch_10.pth')
    save_truncated(str(tmp_path / 'epoch_11.pth'), str(tmp_path / 'epoch_10.pth'))
    (tmp_path / 'epoch_12.pth').write_text('not a checkpoint')
    torch.save({}, tmp_path / 'best_coco_bbox_mAP_epoch_20.pth')
    assert is_complete_checkpoint(str(tmp_path / 'epoch_3.pth'))
    for name in ('epoch_11.pth', 'epoch_12.pth', 'missing.pth'):
        assert not is_complete_checkpoint(str(tmp_path / name))
    assert newest_complete_checkpoint([str(tmp_path)]) == str(tmp_path / 'epoch_10.pth')


def test_config_checkpoint_hook_becomes_safe(make_runner):
    runner = make_runner(length=1)
    runner.train()
    kinds = [type(h) for h in runner.hooks if 'Checkpoint' in type(h).__name__]
    assert SafeCheckpointHook in kinds


def test_interrupted_write_keeps_the_previous_checkpoint(make_runner, monkeypatch):
    """Ctrl-C in the middle of writing epoch_2 with max_keep_ckpts=1: MMEngine would already
    have deleted epoch_1 and left last_checkpoint naming it."""
    put = LocalBackend.put

    def interrupted_put(self, obj, filepath):
        if 'epoch_2' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise KeyboardInterrupt
        put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', interrupted_put)
    runner = make_runner(length=3, max_keep=1)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    work = runner.work_dir
    assert sorted(f for f in os.listdir(work) if '.pth' in f) == ['epoch_1.pth']
    assert open(osp.join(work, 'last_checkpoint')).read() == osp.join(work, 'epoch_1.pth')
    assert is_complete_checkpoint(osp.join(work, 'epoch_1.pth'))

    monkeypatch.setattr(LocalBackend, 'put', put)
    resumed = make_runner(length=3, resume=True)
    resumed.train()
    assert resumed.epoch == 3 and osp.isfile(osp.join(work, 'epoch_3.pth'))


@pytest.mark.parametrize('damage', ['deleted', 'truncated'])
def test_resume_with_dangling_last_checkpoint_falls_back_and_says_so(make_runner, capfd,
                                                                     damage):
    runner = make_runner(length=2, max_keep=2)
    runner.train()
    work = runner.work_dir
    last = osp.join(work, 'epoch_2.pth')
    if damage == 'deleted':
        os.remove(last)
    else:
        save_truncated(last, last)
    capfd.readouterr()

    resumed = make_runner(length=3, resume=True)
    resumed.train()
    log = capfd.readouterr().out
    assert f'names {last}, which' in log and ('does not exist' if damage == 'deleted' else
                                              'incomplete') in log
    assert f'resuming from {osp.join(work, "epoch_1.pth")}' in log
    assert 'resumed epoch: 1' in log  # MMEngine's own line: epoch 1 was the start point
    assert resumed.epoch == 3 and is_complete_checkpoint(osp.join(work, 'epoch_3.pth'))


def test_resume_without_checkpoints_says_it_starts_over(make_runner, capfd):
    runner = make_runner(length=1, resume=True)
    runner.train()
    assert 'training starts from the beginning' in capfd.readouterr().out
    assert runner.epoch == 1


def test_resume_from_an_incomplete_file_is_refused(make_runner, tmp_path):
    make_runner(length=1).train()
    broken = str(tmp_path / 'work' / 'epoch_7.pth')
    save_truncated(broken, str(tmp_path / 'work' / 'epoch_1.pth'))
    with pytest.raises(ResumeError, match='incomplete.*newest complete checkpoint is .*epoch_1'):
        make_runner(length=2, resume=True, load_from=broken).train()
