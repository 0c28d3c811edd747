"""Slurm, for real: a one-node cluster from Debian's packages (``.ci/slurm_cluster.sh``) runs
``tools/slurm_train.sh`` as an sbatch job of 2 CPU tasks (gloo). Slurm's warning signal
(``scancel --signal=USR1 --batch``) in the middle of an epoch makes the job save that
iteration and requeue itself; the requeued job resumes inside the epoch and ends with the
weights of an uninterrupted 2-process run. A 2-task srun job computes the gradients of one
process on the whole batch. Skipped where the Slurm binaries are missing or not run as root
(CI installs them: ``.ci/slurm_cluster.sh install``)."""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch
from helpers import DEMO, ROOT, free_port

CLUSTER = osp.join(ROOT, '.ci/slurm_cluster.sh')
BINARIES = ('slurmctld', 'slurmd', 'sbatch', 'srun', 'scontrol', 'munged')

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(b) for b in BINARIES),
                       reason='Slurm is not installed (bash .ci/slurm_cluster.sh install)'),
    pytest.mark.skipif(os.geteuid() != 0, reason='the test cluster runs its daemons as root'),
]


@pytest.fixture(scope='session')
def slurm(tmp_path_factory):
    """The environment of a running one-node cluster; stopped after the session."""
    folder = str(tmp_path_factory.mktemp('slurm'))
    started = subprocess.run(['bash', CLUSTER, 'start', folder], capture_output=True,
                             text=True, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    env = dict(os.environ, SLURM_CONF=osp.join(folder, 'slurm.conf'))
    yield env
    subprocess.run(['scancel', '--user', 'root'], env=env, timeout=60)
    subprocess.run(['bash', CLUSTER, 'stop', folder], timeout=60)


def without(env: dict, name: str) -> dict:
    return {k: v for k, v in env.items() if k != name}


def job_state(job: str, env: dict) -> dict:
    """``JobState``, ``Reason`` and ``Restarts`` of a job, from ``scontrol show job``."""
    out = subprocess.run(['scontrol', 'show', 'job', job], capture_output=True, text=True,
                         env=env, timeout=60).stdout
    return dict(re.findall(r'(JobState|Reason|Restarts)=(\S+)', out))


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f'timed out waiting for {what}'
        time.sleep(1)


def weights(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def test_preempted_job_requeues_and_ends_with_the_uninterrupted_weights(
        slurm, demo_options, tmp_path):
    options = demo_options + [
        'train_dataloader.batch_size=1', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=10',
        'default_hooks.logger.interval=1', 'model.backbone.drop_path_rate=0.1'  # random stream
    ]  # 8 images, 2 processes: 4 iterations an epoch
    straight = str(tmp_path / 'straight')
    reference = subprocess.run(
        ['bash', 'tools/dist_train.sh', DEMO, '2', '--work-dir', straight, '--cfg-options',
         *options], cwd=ROOT, capture_output=True, text=True, timeout=900,
        env=dict(slurm, PORT=str(free_port()), OMP_NUM_THREADS='1'))
    assert reference.returncode == 0, reference.stderr[-3000:]

    work, log = str(tmp_path / 'slurm'), str(tmp_path / 'job.log')
    submitted = subprocess.run(
        ['sbatch', '--parsable', '--requeue', '--ntasks=2', '--cpus-per-task=1', f'--output={log}',
         '--open-mode=append', 'tools/slurm_train.sh', 'debug', 'glmix', DEMO, work,
         '--cfg-options', *options], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=dict(without(slurm, 'OMP_NUM_THREADS'), GPUS='2', GPUS_PER_NODE='2',
                 CPUS_PER_TASK='1', MASTER_PORT=str(free_port())))
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(';')[0]
    # The signal comes after the first iteration of epoch 2 is logged: in the middle of it.
    def in_epoch_2() -> bool:
        state = job_state(job, slurm)
        assert state.get('JobState') in ('PENDING', 'RUNNING'), \
            'the job ended before epoch 2: ' + (open(log).read()[-3000:] if osp.exists(log) else '')
        # A job the cluster can never run (e.g. more CPUs than the node has) waits for ever.
        assert state.get('Reason') not in ('PartitionConfig', 'ReqNodeNotAvail'), \
            f'the test cluster cannot run the job: {state}'
        return osp.exists(log) and 'Epoch(train) [2][1/4]' in open(log).read()

    wait_until(in_epoch_2, 900, 'the first iteration of epoch 2')
    subprocess.run(['scancel', '--signal=USR1', '--batch', job], env=slurm, timeout=60,
                   check=True)
    # Requeued, the job waits for Slurm's hold (cred_expire + 1 s: 16 s on the test cluster,
    # .ci/slurm_cluster.sh) and runs again to the end.
    ended = ('COMPLETED', 'FAILED', 'CANCELLED')
    wait_until(lambda: job_state(job, slurm).get('JobState') in ended, 1200, 'the job to end')
    out = open(log).read()
    assert 'SIGUSR1 received: stopping at this iteration boundary' in out
    assert f'requeueing job {job}' in out
    assert re.search(r'Saved \S+epoch_2_iter_\d\.pth before stopping', out), out[-3000:]
    record = subprocess.run(['scontrol', 'show', 'job', job], capture_output=True, text=True,
                            env=slurm, timeout=60).stdout
    state = job_state(job, slurm)
    assert (state.get('JobState'), state.get('Restarts')) == ('COMPLETED', '1'), \
        ' '.join(re.findall(r'(?:JobState|Reason|ExitCode|Restarts)=\S+', record)) + \
        f"; Slurm's logs: {osp.join(osp.dirname(slurm['SLURM_CONF']), 'log')}\n" + out[-3000:]
    assert 'Resuming inside epoch 2' in out
    a, b = weights(osp.join(straight, 'epoch_2.pth')), weights(osp.join(work, 'epoch_2.pth'))
    # Bit for bit since Slurm tasks compute with CPUS_PER_TASK threads, as torchrun's processes
    # with 1 (tools/slurm_common.sh); with every core of the node, all tensors differed.
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'{len(different)} tensors differ, e.g. {different[:3]}'


def test_two_task_job_gradients_equal_one_process_on_the_whole_batch(slurm):
    result = subprocess.run(
        ['srun', '--ntasks=2', '--cpus-per-task=1', sys.executable,
         'tests/test_tools/ddp_gradients.py'], cwd=ROOT, capture_output=True, text=True,
        timeout=600, env=dict(slurm, MASTER_PORT=str(free_port())))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['world_size'] == 2 and report['params'] > 200
    assert report['max_rel_error'] < 1e-4, report
