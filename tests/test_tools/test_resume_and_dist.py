"""Training reliability: exact resume after SIGKILL, and 2-process DDP on the CPU (gloo)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs/demo/maskrcnn_glnet_4g_demo.py')


def train_cmd(work: str, options: list, *extra: str) -> list:
    return [sys.executable, 'tools/train.py', DEMO, '--work-dir', work, *extra,
            '--cfg-options', *options]


def weights(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def test_resume_after_sigkill_ends_with_the_same_weights(demo_options, tmp_path):
    options = demo_options + [
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=5',
        'model.backbone.drop_path_rate=0.1'  # random stream matters
    ]
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    run = subprocess.run(train_cmd(straight, options), cwd=ROOT, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]

    proc = subprocess.Popen(train_cmd(killed, options), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not osp.exists(osp.join(killed, 'last_checkpoint')) and time.time() < deadline:
        assert proc.poll() is None, 'training ended before its first checkpoint'
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not osp.exists(osp.join(killed, 'epoch_3.pth')), 'killed too late to test resume'

    resumed = subprocess.run(train_cmd(killed, options, '--resume'), cwd=ROOT,
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed' in (resumed.stdout + resumed.stderr).lower()
    a, b = weights(osp.join(straight, 'epoch_3.pth')), weights(osp.join(killed, 'epoch_3.pth'))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'{len(different)} tensors differ, e.g. {different[:3]}'


def test_dist_train_runs_two_processes_on_cpu(demo_options, tmp_path):
    work = str(tmp_path / 'dist')
    env = dict(os.environ, PORT='29577')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', DEMO, '2', '--work-dir', work, '--cfg-options',
         *demo_options, 'train_cfg.max_epochs=1', 'train_cfg.val_interval=10'],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
