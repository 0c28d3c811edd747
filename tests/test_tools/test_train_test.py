"""tools/train.py and tools/test.py end to end on a tiny generated dataset (real Mask R-CNN,
real CocoMetric); the missing-dataset, missing-weights, launcher and argument mistakes answered in
one line."""
import hashlib
import json
import os
import os.path as osp
import subprocess

import pytest
import torch
from helpers import DEMO, ROOT, run_script, run_tool_process

from glmix_mm.engine.hooks.eager_optimizer_step_hook import MMENGINE_COMPILE_MIN


@pytest.fixture
def run_here(capsys, monkeypatch):
    """``run_here(SCRIPT, *ARGS, cwd=...)``: a tool run in this process, as ``python SCRIPT
    ARGS`` would run it (helpers.run_script), its exit code and output in a CompletedProcess.
    For the mistakes that end before training: no interpreter start-up and imports per case;
    an uncaught exception fails the test as a traceback would."""

    def run(script, *args, cwd=ROOT):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = run_script(osp.relpath(script, ROOT) if osp.isabs(script) else script, *args)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess([script, *args], code, out, err)

    return run


def test_demo_data_is_exact_and_deterministic(demo_data, tmp_path):
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    from helpers import load_tool
    make_demo_data = load_tool('make_demo_data.py')
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
    # One iteration (2 of the 8 images): bfloat16 is slow on CPUs without bfloat16 units.
    train = run_tool_process('tools/train.py', DEMO, '--work-dir', work, '--amp', '--cfg-options',
                             *options, 'train_dataloader.dataset.indices=2')
    assert train.returncode == 0, train.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    test = run_tool_process('tools/test.py', DEMO, osp.join(work, 'epoch_1.pth'), '--work-dir',
                            work, '--show-dir', 'vis', '--amp', '--cfg-options', *options)
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
def test_missing_dataset_gives_instructions_not_traceback(run_here, tmp_path, config, name,
                                                         url):
    result = run_here(osp.join(ROOT, 'tools/train.py'), osp.join(ROOT, config), '--work-dir',
                      str(tmp_path), cwd=str(tmp_path))
    assert result.returncode == 2
    assert f'{name}' in result.stderr and 'not found' in result.stderr and url in result.stderr
    assert 'Traceback' not in result.stderr


FINETUNE = osp.join(ROOT, 'configs/demo/maskrcnn_glnet_4g_finetune_demo.py')


def assert_one_line(result, *expected):
    """Exit code 2, and stderr ends in one line (argparse's usage error or our ``error:``)
    holding ``expected``, without a traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert 'error: ' in last and all(text in last for text in expected), result.stderr[-3000:]


def test_missing_pretrained_weights_is_one_line_with_the_fix(run_here, demo_options, tmp_path):
    """The data in place, the backbone's init_cfg names a file that is not there."""
    result = run_here(osp.join(ROOT, 'tools/train.py'), FINETUNE, '--work-dir',
                      str(tmp_path / 'work'), '--cfg-options', *demo_options, cwd=str(tmp_path))
    assert_one_line(result, 'model.backbone.init_cfg.checkpoint=checkpoints/demo/'
                    'glnet_4g_pretrained.pth does not exist', 'model.backbone.init_cfg=None')


def test_compile_option_on_an_old_torch_is_one_line(run_here, monkeypatch, demo_options,
                                                    tmp_path):
    """torch 2.1 (simulated here by its version string) refuses MMEngine's compile option."""
    monkeypatch.setattr(torch, '__version__', '2.1.2+cu121')
    result = run_here('tools/train.py', DEMO, '--work-dir', str(tmp_path), '--cfg-options',
                      *demo_options, 'compile.backend=eager')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: MMEngine's compile option (compile= in the config) needs PyTorch >= "
        f'{MMENGINE_COMPILE_MIN} (found 2.1.2+cu121); upgrade torch to use it.')
    assert not osp.exists(osp.join(str(tmp_path), 'epoch_1.pth'))


@pytest.mark.parametrize('launcher,variable', [('slurm', 'SLURM_PROCID'), ('pytorch', 'RANK')])
def test_launcher_without_its_environment_is_one_line(run_here, monkeypatch, demo_options,
                                                      tmp_path, launcher, variable):
    for key in list(os.environ):
        if key.startswith('SLURM_') or key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
            monkeypatch.delenv(key)
    result = run_here('tools/train.py', DEMO, '--work-dir', str(tmp_path), '--launcher',
                      launcher, '--cfg-options', *demo_options)
    assert_one_line(result, f'--launcher {launcher} needs', variable)


@pytest.mark.parametrize('tool,args,expected', [
    ('train.py', [], 'the following arguments are required: config'),
    ('train.py', [DEMO, '--cfg-options', 'train_cfg.max_epochs'], 'expected KEY=VALUE'),
    ('train.py', [DEMO, '--cfg-options', '=1'], 'expected KEY=VALUE'),
    ('train.py', [DEMO, '--cfg-options', 'a=[1,2'], '--cfg-options: cannot read'),
    ('train.py', [DEMO, '--launcher', 'ssh'], "invalid choice: 'ssh'"),
    ('train.py', [DEMO, '--local-rank', 'x'], "invalid int value: 'x'"),
    ('train.py', [DEMO, '--bogus'], 'unrecognized arguments: --bogus'),
    ('train.py', ['missing.py'], 'config file missing.py not found'),
    ('train.py', [DEMO, '--work-dir', '{file}'], 'is a file: give a folder to --work-dir'),
    ('test.py', [DEMO], 'the following arguments are required: checkpoint'),
    ('test.py', [DEMO, '{file}', '--cfg-options', 'x'], 'expected KEY=VALUE'),
    ('test.py', [DEMO, 'missing.pth'], 'checkpoint missing.pth does not exist'),
    ('test.py', [DEMO, '{file}', '--launcher', 'ssh'], "invalid choice: 'ssh'"),
    ('test.py', [DEMO, '{file}', '--work-dir', '{file}'], 'is a file'),
])
def test_argument_mistakes_are_one_line(run_here, tmp_path, tool, args, expected):
    existing = tmp_path / 'a_file'
    existing.write_text('')
    args = [a.replace('{file}', str(existing)) for a in args]
    assert_one_line(run_here(f'tools/{tool}', *args), expected)
