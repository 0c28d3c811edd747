"""Training reliability: exact resume after SIGKILL, and 2-process DDP on the CPU (gloo): it ends
cleanly, and its gradients are those of one process on the whole batch."""
import gc
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from torch.nn.parallel import DistributedDataParallel

from glmix_mm.runner import distributed_session
from helpers import DEMO, ROOT, free_port, gloo_worker_threads, load_tool, run_tool_process


def train_args(work: str, options: list, *extra: str) -> list:
    """``tools/train.py`` and its arguments: the demo detector trained in ``work``."""
    return ['tools/train.py', DEMO, '--work-dir', work, *extra, '--cfg-options', *options]


def weights(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_the_same_weights(demo_options, tmp_path):
    options = demo_options + [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=5',
        'model.backbone.drop_path_rate=0.1'  # random stream matters
    ]
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    run = run_tool_process(*train_args(straight, options))
    assert run.returncode == 0, run.stderr[-3000:]

    proc = subprocess.Popen([sys.executable, *train_args(killed, options)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not osp.exists(osp.join(killed, 'last_checkpoint')) and time.time() < deadline:
        assert proc.poll() is None, 'training ended before its first checkpoint'
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not osp.exists(osp.join(killed, 'epoch_2.pth')), 'killed too late to test resume'

    resumed = run_tool_process(*train_args(killed, options, '--resume'))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed' in (resumed.stdout + resumed.stderr).lower()
    a, b = weights(osp.join(straight, 'epoch_2.pth')), weights(osp.join(killed, 'epoch_2.pth'))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'{len(different)} tensors differ, e.g. {different[:3]}'


# A stock MMDetection config, no glmix_mm hook in it: a tiny RetinaNet (ResNet-18 of 8 base
# channels) on the generated demo data, whose random flips draw from numpy's stream; MMEngine's
# default hooks (a checkpoint every epoch).
PLAIN_MMDET = """
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'
default_scope = 'mmdet'
model = dict(
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    bbox_head=dict(num_classes=3, in_channels=16, feat_channels=16, stacked_convs=1))
train_dataloader = dict(
    batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CocoDataset', data_root='{root}', ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=('square', 'disc', 'triangle')),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
randomness = dict(seed=0)
"""


def test_a_plain_mmdet_config_resumes_the_same_random_stream(demo_data, tmp_path, capsys):
    """tools/train.py gives a config without our hooks the safety hooks, RNGStateHook among
    them: trained for one epoch, then resumed for the second, it ends with the weights of the
    run trained straight for two."""
    config = tmp_path / 'retinanet_demo.py'
    config.write_text(PLAIN_MMDET.format(root=f'{demo_data}/coco/'))
    train = load_tool('train.py')
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    assert train.main([str(config), '--work-dir', straight]) == 0
    assert train.main([str(config), '--work-dir', resumed, '--cfg-options',
                       'train_cfg.max_epochs=1']) == 0
    assert train.main([str(config), '--work-dir', resumed, '--resume']) == 0
    a, b = (weights(osp.join(w, 'epoch_2.pth')) for w in (straight, resumed))
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert a.keys() == b.keys() and not different, f'{len(different)} tensors differ'


@pytest.mark.slow
def test_dist_train_runs_two_processes_on_cpu(demo_options, tmp_path):
    work = str(tmp_path / 'dist')
    env = dict(os.environ, PORT=str(free_port()))
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', DEMO, '2', '--work-dir', work, '--cfg-options',
         *demo_options, 'train_cfg.max_epochs=1', 'train_cfg.val_interval=10'],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'terminate called' not in log
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


def test_ddp_gradients_equal_one_process_on_the_whole_batch():
    script = osp.join(ROOT, 'tests/test_tools/ddp_gradients.py')
    result = run_tool_process('-m', 'torch.distributed.run', '--nproc_per_node=2',
                              f'--master_port={free_port()}', script, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['params'] > 200
    assert report['max_rel_error'] < 1e-4, report
    # Channels-last kernels get gradients of their own layout: no copy through DDP's buckets.
    assert report['grad_strides_differ'] == [], report
    assert 'Grad strides do not match' not in result.stderr


@pytest.mark.slow
def test_two_nodes_on_one_machine_give_the_gradients_of_one_process():
    """torchrun --nnodes 2, node ranks 0 and 1 over 127.0.0.1, one process each."""
    script, port = osp.join(ROOT, 'tests/test_tools/ddp_gradients.py'), free_port()
    nodes = [subprocess.Popen(
        [sys.executable, '-m', 'torch.distributed.run', '--nnodes=2', f'--node_rank={rank}',
         '--nproc_per_node=1', '--master_addr=127.0.0.1', f'--master_port={port}', script],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=600))
    finally:
        for node in nodes:
            node.kill()
    assert [n.returncode for n in nodes] == [0, 0], outputs[0][1][-3000:]
    report = json.loads(outputs[0][0].strip().splitlines()[-1])
    assert report['world_size'] == 2 and report['params'] > 200
    assert report['max_rel_error'] < 1e-4, report


@pytest.mark.slow
def test_dist_train_runs_the_demo_detector_as_two_nodes(demo_options, tmp_path):
    """tools/dist_train.sh with NNODES=2 and NODE_RANK 0 / 1 (one process each), as on two
    machines."""
    work = str(tmp_path / 'nodes')
    env = dict(os.environ, NNODES='2', PORT=str(free_port()), MASTER_ADDR='127.0.0.1')
    nodes = [subprocess.Popen(
        ['bash', 'tools/dist_train.sh', DEMO, '1', '--work-dir', work, '--cfg-options',
         *demo_options, 'train_cfg.max_epochs=1', 'train_cfg.val_interval=10'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(env, NODE_RANK=str(rank))) for rank in (0, 1)]
    logs = []
    try:
        for node in nodes:
            logs.append(node.communicate(timeout=900)[0])
    finally:
        for node in nodes:
            node.kill()
    assert [n.returncode for n in nodes] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert 'Distributed training: True' in logs[0] and 'GPU number: 2' in logs[0]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


@pytest.fixture
def single_process_group(monkeypatch):
    """A config for a 1-process torchrun-like launch, its gloo group started."""
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()), RANK='0',
                           LOCAL_RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    dist.init_process_group('gloo')  # as setup_cpu_distributed would without a GPU
    yield Config(dict(launcher='pytorch'))
    if dist.is_initialized():
        dist.destroy_process_group()


def one_ddp_step() -> DistributedDataParallel:
    model = DistributedDataParallel(torch.nn.Linear(4, 4))
    model(torch.randn(2, 4)).sum().backward()
    if gloo_worker_threads() == 0:  # while the group lives
        pytest.skip("this torch's gloo does not name its worker threads (pt_gloo_runloop; "
                    'unnamed on torch 2.1.2): they cannot be counted')
    return model


@pytest.mark.skipif(not osp.isdir('/proc/self/task'), reason='thread names from /proc')
def test_distributed_session_joins_the_gloo_threads(single_process_group):
    with distributed_session(single_process_group):
        one_ddp_step()
        assert gloo_worker_threads() > 0
    assert not dist.is_initialized()
    assert gloo_worker_threads() == 0  # ended here, not racing the interpreter's exit


@pytest.mark.skipif(not osp.isdir('/proc/self/task'), reason='thread names from /proc')
def test_distributed_session_joins_the_gloo_threads_after_an_error(single_process_group):
    def failing_run():
        model = one_ddp_step()  # noqa: F841  (a local of the failed frame, as a runner is)
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        with distributed_session(single_process_group):
            failing_run()
    assert gloo_worker_threads() == 0


@pytest.mark.skipif(not osp.isdir('/proc/self/task'), reason='thread names from /proc')
def test_the_group_lives_as_long_as_a_ddp_model(single_process_group):
    kept = []
    with distributed_session(single_process_group):
        kept.append(one_ddp_step())
    assert not dist.is_initialized()
    assert gloo_worker_threads() > 0  # why the tools must not keep the runner past the block
    kept.clear()
    gc.collect()
    assert gloo_worker_threads() == 0
