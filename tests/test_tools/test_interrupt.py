"""tools/train.py stopped by real signals: SIGTERM (cluster preemption) and Ctrl-C (SIGINT to
the whole process group, data-loader worker included) leave a run that --resume finishes, also
when last_checkpoint names a file that is gone."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
from helpers import DEMO, ROOT, run_tool_process


def start(work: str, options: list, log: str) -> subprocess.Popen:
    with open(log, 'w') as out:
        return subprocess.Popen(
            [sys.executable, 'tools/train.py', DEMO, '--work-dir', work, '--cfg-options',
             *options], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group, as a shell job


def wait_for(path: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + 600
    while not osp.exists(path):
        assert proc.poll() is None, 'training ended before its first checkpoint'
        assert time.time() < deadline
        time.sleep(0.1)


def checkpoints(work: str) -> list:
    return sorted(f for f in os.listdir(work) if '.pth' in f)


@pytest.mark.slow
def test_sigterm_then_resume_with_a_dangling_last_checkpoint(demo_options, tmp_path):
    work, log = str(tmp_path / 'work'), str(tmp_path / 'train.log')
    options = demo_options + ['train_cfg.max_epochs=2', 'train_cfg.val_interval=10']
    proc = start(work, options, log)
    wait_for(osp.join(work, 'last_checkpoint'), proc)  # epoch 1 is saved; now in epoch 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 128 + signal.SIGTERM
    out = open(log).read()
    assert 'SIGTERM received: stopping at this iteration boundary' in out
    assert 'SIGTERM: training stopped; continue with --resume (from ' in out
    assert 'Traceback' not in out
    kept = checkpoints(work)
    assert 'epoch_1.pth' in kept and 'epoch_2.pth' not in kept
    assert not [f for f in kept if f.endswith('.tmp')]

    # As if a plain MMEngine run had been stopped while writing, after deleting the file that
    # last_checkpoint names: --resume takes the newest complete checkpoint and says so.
    gone = osp.join(work, 'epoch_9.pth')
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(gone)
    newest = osp.join(work, kept[-1])
    resumed = run_tool_process('tools/train.py', DEMO, '--work-dir', work, '--resume',
                               '--cfg-options', *options)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert f'names {gone}, which does not exist; resuming from {newest}' in out
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    assert open(osp.join(work, 'last_checkpoint')).read() == osp.join(work, 'epoch_2.pth')


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_with_a_loader_worker(demo_options, tmp_path):
    work, log = str(tmp_path / 'work'), str(tmp_path / 'train.log')
    options = demo_options + [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=10',
        'train_dataloader.num_workers=1', 'train_dataloader.persistent_workers=True'
    ]
    proc = start(work, options, log)
    wait_for(osp.join(work, 'last_checkpoint'), proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert proc.wait(timeout=300) == 128 + signal.SIGINT
    out = open(log).read()
    assert 'SIGINT: training stopped; continue with --resume (from ' in out
    assert 'Traceback' not in out and 'exited unexpectedly' not in out
    assert 'epoch_1.pth' in checkpoints(work)
