"""tools/train.py and tools/test.py end to end on a tiny generated dataset (real Mask R-CNN,
real CocoMetric), and the missing-dataset message."""
import hashlib
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs/demo/maskrcnn_glnet_4g_demo.py')


def run_tool(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_demo_data_is_exact_and_deterministic(demo_data, tmp_path):
    import make_demo_data
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils
    make_demo_data.main(['--out', str(tmp_path), '--num-train', '8', '--num-val', '4',
                         '--size', '64'])
    ann = 'coco/annotations/instances_train.json'
    digest = [hashlib.md5(open(osp.join(d, ann), 'rb').read()).hexdigest()
              for d in (demo_data, tmp_path)]
    assert digest[0] == digest[1]
    coco = json.load(open(osp.join(demo_data, ann)))
    assert coco['annotations'] and len(coco['categories']) == 3
    semantic = np.array(
        Image.open(osp.join(demo_data, 'ade/annotations/training/train_00001.png')))
    for a in coco['annotations']:
        rle = dict(a['segmentation'], counts=a['segmentation']['counts'].encode())
        m = mask_utils.decode(rle)
        ys, xs = np.nonzero(m)
        assert a['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert a['area'] == m.sum()
        if a['image_id'] == 1:  # the semantic map labels the same pixels with the class
            assert (semantic[m > 0] == a['category_id']).all()


@pytest.mark.slow
def test_train_then_test_gives_coco_metrics(demo_options, tmp_path):
    """Both with --amp (float16 on a GPU, bfloat16 backbone and neck on the CPU); the float32
    path runs in test_interrupt.py, test_strict_loading.py and test_resume_and_dist.py."""
    options = demo_options + ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
    work = str(tmp_path / 'work')
    train = run_tool('tools/train.py', DEMO, '--work-dir', work, '--amp', '--cfg-options',
                     *options)
    assert train.returncode == 0, train.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    test = run_tool('tools/test.py', DEMO, osp.join(work, 'epoch_1.pth'), '--work-dir', work,
                    '--show-dir', 'vis', '--amp', '--cfg-options', *options)
    assert test.returncode == 0, test.stderr[-3000:]
    if not torch.cuda.is_available():
        for result in (train, test):
            assert 'backbone and neck under bfloat16 autocast' in result.stdout + result.stderr
    for key in ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/bbox_mAP_50'):
        assert f"'{key}'" in test.stdout
    drawn = subprocess.run(['find', work, '-name', '*.png', '-path', '*vis*'],
                           capture_output=True, text=True).stdout.split()
    assert len(drawn) == 4


@pytest.mark.parametrize('config,name,url', [
    ('configs/maskrcnn_glnet_4g_coco.py', 'COCO 2017', 'cocodataset.org'),
    ('configs/upernet_glnet_4g_ade20k.py', 'ADE20K', 'sceneparsing.csail.mit.edu'),
])
def test_missing_dataset_gives_instructions_not_traceback(tmp_path, config, name, url):
    result = run_tool(osp.join(ROOT, 'tools/train.py'), osp.join(ROOT, config), '--work-dir',
                      str(tmp_path), cwd=str(tmp_path))
    assert result.returncode == 2
    assert f'{name}' in result.stderr and 'not found' in result.stderr and url in result.stderr
    assert 'Traceback' not in result.stderr
