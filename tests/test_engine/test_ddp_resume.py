"""Mid-epoch exact resume under 2-process DDP (gloo): ``ddp_resume.py`` under torchrun."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

HERE = osp.dirname(osp.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_resume_inside_an_epoch_with_the_uninterrupted_weights(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={free_port()}', osp.join(HERE, 'ddp_resume.py'), str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['files'] == ['epoch_1.pth', 'epoch_2_iter_2.pth']
    assert report['same_weights'] == [True, True]  # each rank's model
