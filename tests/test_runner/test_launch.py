"""The launchers' environments: Slurm's variables become torchrun's, a missing one is refused
in one line."""
import os

import pytest

from glmix_mm.runner import LaunchError, check_launch_environment
from glmix_mm.runner.launch import slurm_to_torchrun_variables

TORCHRUN = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


@pytest.fixture
def clean_env(monkeypatch):
    """No Slurm or torchrun variable. What the code under test sets is removed after the test
    by the root conftest's ``restore_environment``."""
    for key in list(os.environ):
        if key.startswith('SLURM_') or key in TORCHRUN:
            monkeypatch.delenv(key)
    return monkeypatch


def test_slurm_variables_become_torchrun_variables(clean_env, tmp_path):
    scontrol = tmp_path / 'scontrol'  # as Slurm's: one host a line
    scontrol.write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames node[3-4]" ] && '
                        'printf "node3\\nnode4\\n"\n')
    scontrol.chmod(0o755)
    clean_env.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    for key, value in dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1',
                           SLURM_NODELIST='node[3-4]').items():
        clean_env.setenv(key, value)
    check_launch_environment('slurm')
    slurm_to_torchrun_variables()
    assert [os.environ[k] for k in TORCHRUN] == ['5', '8', '1', 'node3', '29500']


def test_master_addr_and_port_already_set_stay(clean_env):
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='2', SLURM_NODELIST='x',
                           MASTER_ADDR='10.0.0.1', MASTER_PORT='1234').items():
        clean_env.setenv(key, value)
    slurm_to_torchrun_variables()  # no scontrol needed
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']) == ('10.0.0.1', '1234')


@pytest.mark.parametrize('launcher,present,missing', [
    ('slurm', dict(SLURM_NTASKS='2'), 'SLURM_PROCID, SLURM_NODELIST, which srun sets'),
    ('pytorch', dict(RANK='0', WORLD_SIZE='2'), 'LOCAL_RANK, MASTER_ADDR, MASTER_PORT, which '
     'torchrun sets'),
])
def test_missing_variables_are_named(clean_env, launcher, present, missing):
    for key, value in present.items():
        clean_env.setenv(key, value)
    with pytest.raises(LaunchError, match=f'--launcher {launcher} needs {missing}'):
        check_launch_environment(launcher)
    check_launch_environment('none')


def test_no_scontrol_is_one_line(clean_env, tmp_path):
    clean_env.setenv('PATH', str(tmp_path))
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='2', SLURM_NODELIST='n[1-2]').items():
        clean_env.setenv(key, value)
    with pytest.raises(LaunchError, match='scontrol is not on PATH.*set MASTER_ADDR'):
        slurm_to_torchrun_variables()
