"""Segmentation (mmseg, IoUMetric) and classification (mmpretrain, Accuracy) through the same
tools/train.py and tools/test.py, on the generated demo data."""
import os.path as osp
import subprocess

import pytest
import torch
from helpers import ROOT, run_tool_process
from mmengine.config import Config

pytestmark = pytest.mark.slow  # tools in subprocesses, training runs


def test_segmentation_demo_trains_and_reports_miou(demo_data, tmp_path):
    root = f'{demo_data}/ade/'
    options = [
        f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}', 'train_dataloader.batch_size=2',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False', 'model.data_preprocessor.size=(64,64)',
    ]
    config = osp.join(ROOT, 'configs/demo/upernet_glnet_4g_demo.py')
    work = str(tmp_path / 'seg')
    train = run_tool_process('tools/train.py', config, '--work-dir', work, '--cfg-options',
                             *options)
    assert train.returncode == 0, train.stderr[-3000:]
    test = run_tool_process('tools/test.py', config, osp.join(work, 'iter_2.pth'), '--work-dir',
                            work, '--show-dir', 'vis', '--cfg-options', *options)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "'mIoU'" in test.stdout and "'aAcc'" in test.stdout
    drawn = subprocess.run(['find', work, '-name', '*.png', '-path', '*vis*'],
                           capture_output=True, text=True).stdout.split()
    assert len(drawn) == 4  # drawn predictions land in the work dir, not the current dir
    assert not osp.exists(osp.join(ROOT, 'vis'))


def test_classification_eval_on_tiny_folder_reports_top1(demo_data, tmp_path):
    from fakes import random_upstream_checkpoint
    ckpt = random_upstream_checkpoint('stl')
    ckpt['model']['head.weight'] = ckpt['model']['head.weight'][:3]
    ckpt['model']['head.bias'] = ckpt['model']['head.bias'][:3]
    torch.save(ckpt, tmp_path / 'up.pth')
    convert = run_tool_process('tools/model_converters/glnet2mm.py', str(tmp_path / 'up.pth'),
                               str(tmp_path / 'cls.pth'), '--cls')
    assert convert.returncode == 0, convert.stderr

    cfg = Config.fromfile(osp.join(ROOT, 'configs/glnet_stl_in1k.py'))
    cfg.model.head.num_classes = 3
    cfg.model.head.topk = (1, )
    cfg.data_preprocessor.num_classes = 3
    cfg.test_dataloader = dict(
        batch_size=3, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='CustomDataset', data_root=f'{demo_data}/imagenet/val',
                     pipeline=cfg.test_dataloader.dataset.pipeline))
    cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    path = str(tmp_path / 'tiny_cls.py')
    cfg.dump(path)
    test = run_tool_process('tools/test.py', path, str(tmp_path / 'cls.pth'), '--work-dir',
                            str(tmp_path / 'work'))
    assert test.returncode == 0, test.stderr[-3000:]
    assert "'accuracy/top1'" in test.stdout
