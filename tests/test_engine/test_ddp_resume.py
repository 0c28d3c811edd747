"""Mid-epoch exact resume under 2-process DDP (gloo): ``ddp_resume.py`` under torchrun."""
import json
import os
import os.path as osp

import pytest
from helpers import free_port, run_tool_process

HERE = osp.dirname(osp.abspath(__file__))


@pytest.mark.slow
def test_two_processes_resume_inside_an_epoch_with_the_uninterrupted_weights(tmp_path):
    # toy_runner.py (here) imports fakes.py and helpers.py (tests/)
    path = [HERE, osp.dirname(HERE), os.environ.get('PYTHONPATH', '')]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    result = run_tool_process('-m', 'torch.distributed.run', '--nproc_per_node=2',
                              f'--master_port={free_port()}', osp.join(HERE, 'ddp_resume.py'),
                              str(tmp_path), cwd=None, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['files'] == ['epoch_1.pth', 'epoch_2_iter_2.pth']
    assert report['same_weights'] == [True, True]  # each rank's model
    for rank in (0, 1):  # the group ended before exit, not at it (where it can abort)
        with open(tmp_path / f'threads_left_{rank}.txt') as f:
            assert f.read() == '0'
