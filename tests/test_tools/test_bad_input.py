"""Bad input to the tools (docs/reliability.md, "Bad input"): datasets, configs, tool
arguments and image files. Each case checks the exit code and that the one line the user sees
names the problem and the fix, or that the input works and gives the right result (the dataset
checks themselves: tests/test_runner/test_dataset_checks.py).

The tools run in this process (``main(argv)``), which is much faster than a subprocess each.
"""
import json
import os
import os.path as osp
import pickle
import re
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import glmix_mm  # noqa: F401
import helpers
from helpers import DEMO, ROOT, run_tool, truncate_file



def load_tool(path: str):
    """``tools/...`` as a module (:func:`helpers.load_tool`, which takes the path below tools/)."""
    return helpers.load_tool(path[len('tools/'):])


def error_line(capsys) -> str:
    """The first line the tool wrote to stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[0] if lines else ''


def the_error(capsys) -> str:
    """The one ``error:`` line of a tool run in this process, which may also log warnings
    (MMEngine's about the visualizer instance that earlier in-process runs created)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in err, err[-3000:]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Datasets


def test_train_py_missing_data_is_one_message_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    train = load_tool('tools/train.py')
    assert train.main([DEMO, '--work-dir', str(tmp_path / 'work')]) == 2
    out = capsys.readouterr().err
    assert out.startswith('error: The demo dataset not found:') and 'Traceback' not in out
    assert 'make_demo_data.py' in out


def test_train_py_malformed_json_is_one_message_and_exit_2(coco_copy, tmp_path, capsys):
    truncate_file(osp.join(coco_copy, 'annotations/instances_val.json'))
    train = load_tool('tools/train.py')
    options = [f'{k}={v}' for k, v in (
        ('train_dataloader.dataset.data_root', coco_copy),
        ('val_dataloader.dataset.data_root', coco_copy),
        ('val_evaluator.ann_file', coco_copy + 'annotations/instances_val.json'))]
    assert train.main([DEMO, '--work-dir', str(tmp_path / 'w'), '--cfg-options', *options]) == 2
    line = error_line(capsys)
    assert line.startswith('error: ') and 'instances_val.json is not valid JSON' in line


# ---------------------------------------------------------------------------------------------
# make_demo_data.py


def test_make_demo_data_rerun_replaces_its_own_files(tmp_path):
    make_demo_data = load_tool('tools/make_demo_data.py')
    out = str(tmp_path / 'demo')
    assert make_demo_data.main(['--out', out, '--num-train', '6', '--num-val', '3', '--size',
                                '32']) == 0
    (tmp_path / 'demo' / 'notes.txt').write_text('mine')  # outside the generated folders
    assert make_demo_data.main(['--out', out, '--num-train', '3', '--num-val', '3', '--size',
                                '32']) == 0
    assert make_demo_data.files_in_subtrees(out) == set(make_demo_data.planned_files(3, 3))
    assert len(os.listdir(osp.join(out, 'ade', 'images', 'training'))) == 3
    with open(osp.join(out, 'coco', 'annotations', 'instances_train.json')) as f:
        assert len(json.load(f)['images']) == 3
    assert (tmp_path / 'demo' / 'notes.txt').read_text() == 'mine'


def test_make_demo_data_refuses_a_folder_with_other_files(tmp_path, capsys):
    make_demo_data = load_tool('tools/make_demo_data.py')
    folder = tmp_path / 'data' / 'coco' / 'train'
    folder.mkdir(parents=True)
    (folder / 'holiday.png').write_bytes(b'x')
    assert make_demo_data.main(['--out', str(tmp_path / 'data'), '--num-train', '3',
                                '--num-val', '3', '--size', '32']) == 2
    line = error_line(capsys)
    assert "did not write (e.g. coco/train/holiday.png)" in line
    assert 'give a new or empty --out folder, or remove them' in line
    assert os.listdir(folder) == ['holiday.png']  # nothing written, nothing removed


@pytest.mark.parametrize('args,message', [
    (['--size', '0'], 'argument --size: must be at least 32, got 0'),
    (['--num-train', '0'], 'argument --num-train: must be at least 1, got 0'),
    (['--max-objects', 'many'], "argument --max-objects: expected an integer, got 'many'"),
])
def test_make_demo_data_bad_arguments(tmp_path, capsys, args, message):
    assert run_tool('make_demo_data.py', '--out', tmp_path / 'd', *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'd').exists()


# ---------------------------------------------------------------------------------------------
# Image files: visualize_slots.py and image_demo.py read them as the detectors' pipeline does


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('images')
    ramp = (np.arange(64)[None].repeat(48, 0) * 1000).astype(np.uint16)  # 0..63000
    Image.fromarray(ramp).save(folder / 'gray16.png')
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / 'rgb.png')
    Image.fromarray(rgb[..., 0]).save(folder / 'gray.png')
    Image.fromarray(np.dstack([rgb, np.full((48, 64), 128, np.uint8)])).save(folder / 'rgba.png')
    Image.fromarray(rgb).convert('P').save(folder / 'palette.png')
    (folder / 'empty.png').write_bytes(b'')
    (folder / 'notes.png').write_text('not an image')
    return dict(ramp=ramp, rgb=rgb, folder=folder)


@pytest.mark.parametrize('name', ['gray16.png', 'gray.png', 'rgba.png', 'palette.png',
                                  'rgb.png'])
def test_images_of_every_kind_read_as_8bit_rgb(images, name):
    image_demo = load_tool('tools/image_demo.py')
    visualize_slots = load_tool('tools/visualize_slots.py')
    rgb = visualize_slots.read_rgb(str(images['folder'] / name))
    bgr = image_demo.read_image(str(images['folder'] / name))
    assert rgb.shape == bgr.shape == (48, 64, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])
    if name == 'gray16.png':  # scaled to 8 bits, not clipped to white
        np.testing.assert_array_equal(rgb[..., 1], images['ramp'] >> 8)
    elif name in ('rgb.png', 'rgba.png'):  # alpha dropped
        np.testing.assert_array_equal(rgb, images['rgb'])
    elif name == 'gray.png':
        np.testing.assert_array_equal(rgb[..., 2], images['rgb'][..., 0])


def test_visualize_slots_draws_a_16bit_png(images, tmp_path, capsys):
    visualize_slots = load_tool('tools/visualize_slots.py')
    out = tmp_path / 'slots.png'
    assert visualize_slots.main([str(images['folder'] / 'gray16.png'), '--arch', 'stl',
                                 '--size', '32', '--blocks', '2.5', '--out', str(out)]) == 0
    assert 'blocks: 2.5' in capsys.readouterr().out
    with Image.open(out) as png:  # six panels of 240 pixels (older matplotlib rounds one off)
        width, height = png.size
        assert abs(width - 240 * 6) <= 1 and height == 240, png.size


@pytest.mark.parametrize('args,code,message', [
    (['IMG/empty.png'], 1, r"empty\.png' \(0 bytes\) is not an image file that can be read"),
    (['IMG/notes.png'], 1, r"notes\.png' \(12 bytes\) is not an image file that can be read"),
    (['IMG/missing.png'], 2, r"image '.*missing\.png' does not exist"),
    (['IMG/rgb.png', '--blocks', '2.x'], 2, r"--blocks '2\.x': give blocks as 'stage\.block' "
     r'\(e\.g\. 2\.5\); blocks with slots: 0\.0, 0\.1'),
    (['IMG/rgb.png', '--blocks', '1.9'], 2, r"--blocks '1\.9': no such block \(stage 0: "
     r'0\.\.1, stage 1: 0\.\.1, stage 2: 0\.\.5, stage 3: 0\.\.1\)'),
    (['IMG/rgb.png', '--blocks', '3.0'], 2, r"blocks \['3\.0'\] have no slots"),
    (['IMG/rgb.png', '--config', 'no/such/config.py'], 2,
     r"config 'no/such/config\.py' does not exist"),
    (['IMG/rgb.png', '--arch', '5g'], 2, r"--arch: Unknown GLNet arch '5g'"),
])
def test_visualize_slots_bad_input_is_one_line(images, tmp_path, capsys, args, code, message):
    visualize_slots = load_tool('tools/visualize_slots.py')
    args = [a.replace('IMG', str(images['folder'])) for a in args]
    if '--arch' not in args and '--config' not in args:
        args += ['--arch', 'stl']
    out = str(tmp_path / 'x.png')
    assert visualize_slots.main([*args, '--size', '32', '--out', out]) == code
    assert re.search(message, error_line(capsys))
    assert not (tmp_path / 'x.png').exists()


def test_visualize_slots_typo_in_backbone_type(images, tmp_path, capsys):
    visualize_slots = load_tool('tools/visualize_slots.py')
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = '{DEMO}'\nmodel = dict(backbone=dict(type='GLNett'))\n")
    assert visualize_slots.main([str(images['folder'] / 'rgb.png'), '--config', str(config),
                                 '--size', '32', '--out', str(tmp_path / 'x.png')]) == 2
    assert error_line(capsys) == (f'error: {config} has no GLNet backbone: slots exist only '
                                  'in GLNet.')


@pytest.mark.parametrize('args,message', [
    (['--size', '0'], 'argument --size: must be at least 32, got 0'),
    (['--size', '-64'], 'argument --size: must be at least 32, got -64'),
    (['--size', 'big'], "argument --size: expected an integer, got 'big'"),
    (['--num-slots-shown', '0'], 'argument --num-slots-shown: must be at least 1, got 0'),
])
def test_visualize_slots_bad_numbers_are_usage_errors(images, capsys, args, message):
    assert run_tool('visualize_slots.py', images['folder'] / 'rgb.png', '--arch', 'stl', *args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('name,message', [
    ('empty.png', r"empty\.png' \(0 bytes\) is not an image file that can be read"),
    ('notes.png', r"notes\.png' \(12 bytes\) is not an image file that can be read"),
])
def test_image_demo_non_image_is_one_line(images, capsys, name, message):
    image_demo = load_tool('tools/image_demo.py')
    some_file = str(images['folder'] / 'rgb.png')  # the image is read before the checkpoint
    assert image_demo.main([str(images['folder'] / name), DEMO, some_file]) == 1
    assert re.search(message, error_line(capsys))


def test_image_demo_missing_config_is_one_line(images, capsys):
    image_demo = load_tool('tools/image_demo.py')
    image = str(images['folder'] / 'rgb.png')
    assert image_demo.main([image, 'no/such/config.py', image]) == 2
    assert error_line(capsys) == "error: config 'no/such/config.py' does not exist"


def test_image_demo_draws_a_16bit_grayscale_png(images, tmp_path, capsys):
    image_demo = load_tool('tools/image_demo.py')
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(DEMO)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    meta = dict(classes=cfg.metainfo['classes'], palette=cfg.metainfo['palette'])
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(),
                'meta': {'dataset_meta': meta}}, tmp_path / 'det.pth')
    out = tmp_path / 'det.png'
    assert image_demo.main([str(images['folder'] / 'gray16.png'), DEMO, str(tmp_path / 'det.pth'),
                            '--out', str(out)]) == 0
    with Image.open(out) as png:
        assert png.size == (64, 48)
        drawn = np.asarray(png.convert('RGB'))
    assert 0 < drawn.mean() < 250  # the ramp, not a white (clipped) image


# ---------------------------------------------------------------------------------------------
# Tool arguments: get_flops.py, the converters, test.py


@pytest.fixture(scope='module')
def get_flops():
    return load_tool('tools/analysis/get_flops.py')


@pytest.mark.parametrize('shape', [['40x56'], ['40', '56'], ['40X56']])
def test_get_flops_shape_forms(get_flops, capsys, shape):
    assert get_flops.main(['--arch', 'glnet-stl', '--shape', *shape, '--depth', '0']) == 0
    assert '1x3x40x56' in capsys.readouterr().out


@pytest.mark.parametrize('args,code,message', [
    (['--arch', 'glnet-stl', '--shape', 'abc'], 2,
     "--shape takes one or two positive integers (S for SxS, or H W, or HxW), got 'abc'"),
    (['--arch', 'glnet-stl', '--shape', '224x'], 2, "got '224x'"),
    (['--arch', 'glnet-stl', '--shape', '0'], 2, 'one or two positive integers'),
    (['--arch', 'glnet-stl', '--shape', '1', '2', '3'], 2, 'one or two positive integers'),
    (['--arch', 'glnet-5g'], 2, "Unknown arch 'glnet-5g'; choose one of"),
    (['--arch', 'conformer-s32', '--shape', '40'], 2, 'the model rejected the input: '
     'Conformer(patch_size=32) cannot process 40x40 inputs'),
    (['no/such/config.py'], 2, 'config file no/such/config.py not found'),
])
def test_get_flops_bad_arguments(get_flops, capsys, args, code, message):
    try:
        result = get_flops.main(args)
    except SystemExit as exit_:  # argparse's usage errors
        result = exit_.code
    assert result == code and message in capsys.readouterr().err


def test_converter_wrong_arch(tmp_path, capsys):
    """A file of another arch (here: a stem conv of GLNet-4G width) converted as GLNet-9G."""
    torch.save({'model': {'downsample_layers.0.1.weight': torch.zeros(32, 3, 3, 3)}},
               tmp_path / 'glnet_4g.pth')
    assert run_tool('model_converters/glnet2mm.py', tmp_path / 'glnet_4g.pth',
                    tmp_path / 'out.pth', '--arch', '9g') == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and "GLNet(arch='9g')" in err and 'missing keys' in err
    assert not (tmp_path / 'out.pth').exists()
    assert run_tool('model_converters/glnet2mm.py', tmp_path / 'glnet_4g.pth',
                    tmp_path / 'out.pth', '--arch', '5g') == 2
    assert "invalid choice: '5g'" in capsys.readouterr().err


def test_test_py_missing_checkpoint(tmp_path, capsys):
    test_tool = load_tool('tools/test.py')
    assert test_tool.main([DEMO, str(tmp_path / 'epoch_4.pth')]) == 2
    assert error_line(capsys) == f'error: checkpoint {tmp_path}/epoch_4.pth does not exist'


def test_train_py_neck_channels_are_one_line(demo_options, tmp_path, capsys):
    train = load_tool('tools/train.py')
    options = ['--cfg-options', *demo_options, 'model.neck.in_channels=[64,128,256,512]']
    assert train.main([DEMO, '--work-dir', str(tmp_path), *options]) == 2
    assert the_error(capsys).startswith('error: model.neck.in_channels=[64, 128, 256, 512]')


def test_train_py_missing_config_is_one_line(tmp_path, capsys):
    train = load_tool('tools/train.py')
    assert train.main([str(tmp_path / 'nope.py')]) == 2
    assert error_line(capsys) == (f'error: config file {tmp_path}/nope.py not found; give the '
                                  'path of a config such as configs/maskrcnn_glnet_4g_coco.py.')


def test_train_py_typo_in_a_type_is_one_line(demo_options, tmp_path, capsys):
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = '{DEMO}'\nmodel = dict(backbone=dict(type='GLNett'))\n")
    train = load_tool('tools/train.py')
    assert train.main([str(config), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                       *demo_options]) == 2
    line = the_error(capsys)
    assert line.startswith("error: unknown type 'GLNett' in the config: it is not in the "
                           'mmdet::model registry.'), line


def test_config_that_does_not_parse_is_one_line(tmp_path, capsys):
    config = tmp_path / 'broken.py'
    config.write_text('model = dict(type=\n')
    test_tool = load_tool('tools/test.py')
    assert test_tool.main([str(config), str(tmp_path / 'x.pth')]) == 2
    assert error_line(capsys).startswith(f'error: cannot read config {config}: SyntaxError')


def test_test_py_missing_config_is_one_line(tmp_path, capsys):
    test_tool = load_tool('tools/test.py')
    assert test_tool.main([str(tmp_path / 'nope.py'), str(tmp_path / 'x.pth')]) == 2
    assert error_line(capsys).startswith(f'error: config file {tmp_path}/nope.py not found')


def test_typo_in_backbone_type_is_one_line(get_flops, tmp_path, capsys):
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = '{DEMO}'\nmodel = dict(backbone=dict(type='GLNett'))\n")
    assert get_flops.main([str(config), '--shape', '64']) == 2
    assert 'GLNett' in error_line(capsys)


def test_test_py_typo_in_a_transform_type_is_one_line(demo_options, tmp_path, capsys):
    """Types built when the data loader is (datasets, transforms), after the model."""
    checkpoint = tmp_path / 'x.pth'
    checkpoint.write_bytes(b'')  # the loop builds its data loader before reading it
    test_tool = load_tool('tools/test.py')
    options = [*demo_options, 'test_dataloader.dataset.pipeline.0.type=LoadImageFromFil']
    assert test_tool.main([DEMO, str(checkpoint), '--work-dir', str(tmp_path / 'work'),
                           '--cfg-options', *options]) == 2
    assert the_error(capsys).startswith("error: unknown type 'LoadImageFromFil' in the config")


# ---------------------------------------------------------------------------------------------
# Every tool answers every error of ours with one line and the error's exit code
# (glmix_mm.utils.tool_main): one bad input of each kind that reaches the tool.


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    """A plain pickle, a truncated torch.save file, a path that does not exist, and the demo
    detection config made small (``SMALL_DEMO_DETECTOR``: quick to build)."""
    folder = tmp_path_factory.mktemp('bad_files')
    small = Config.fromfile(DEMO)
    small.merge_from_dict(helpers.SMALL_DEMO_DETECTOR)
    small.dump(str(folder / 'small_demo.py'))
    with open(folder / 'plain.pkl', 'wb') as f:
        pickle.dump({'state_dict': {}}, f)
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, folder / 'full.pth')
    data = (folder / 'full.pth').read_bytes()
    (folder / 'truncated.pth').write_bytes(data[:len(data) // 2])
    return dict(pickle=str(folder / 'plain.pkl'), truncated=str(folder / 'truncated.pth'),
                missing=str(folder / 'missing.pth'), SMALL=str(folder / 'small_demo.py'))


CLASSIFIER = osp.join(ROOT, 'configs/glnet_4g_in1k.py')
INIT_CFG_NONE = (r'--cfg-options model\.backbone\.init_cfg\.checkpoint=x\.pth: '
                 r'model\.backbone\.init_cfg is None in the config, not a dict whose keys can be '
                 r'set; replace it whole with --cfg-options model\.backbone\.init_cfg\._delete_='
                 r'True model\.backbone\.init_cfg\.type=Pretrained '
                 r'model\.backbone\.init_cfg\.checkpoint=x\.pth$')


@pytest.mark.parametrize('tool, args, code, message', [
    ('image_demo.py', ['IMG', 'SMALL', 'pickle'], 1, 'a plain pickle file, not a torch.save'),
    ('image_demo.py', ['IMG', 'SMALL', 'truncated'], 1, 'truncated or corrupt checkpoint'),
    ('image_demo.py', ['IMG', 'SMALL', 'missing'], 2, "checkpoint '.*missing.pth' does not exist"),
    ('image_demo.py', ['IMG', CLASSIFIER, 'IMG'], 2, "'mmpretrain' config; image_demo.py draws"),
    ('train.py', [DEMO, '--cfg-options', 'model.backbone.init_cfg.checkpoint=x.pth'], 2,
     INIT_CFG_NONE),
    ('train.py', [DEMO, '--resume', 'missing', '--cfg-options', 'DEMO_OPTIONS'], 1,
     r'Cannot resume from .*missing\.pth: the file does not exist'),
    ('test.py', [DEMO, 'missing'], 2, r'checkpoint .*missing\.pth does not exist'),
    ('visualize_slots.py', ['IMG', '--arch', 'stl', '--size', '32', '--checkpoint',
                            'truncated'], 1, 'truncated or corrupt checkpoint'),
    ('model_converters/glnet2mm.py', ['pickle', 'OUT'], 1, 'a plain pickle file'),
    ('model_converters/conformer2mm.py', ['truncated', 'OUT'], 1, 'truncated or corrupt'),
    ('model_converters/mm2glnet.py', ['missing', 'OUT'], 2, r'missing\.pth does not exist'),
    ('deployment/pytorch2onnx.py', ['--arch', 'stl', '--checkpoint', 'pickle'], 1,
     'a plain pickle file'),
    ('deployment/deploy_detector.py', [DEMO, '--image', 'missing'], 2,
     r"image '.*missing\.pth' does not exist"),
    ('analysis/benchmark.py', ['TYPO', '--shape', '1x3x32x32', '--warmup', '0', '--repeats',
                               '1'], 2, "unknown type 'GLNett' in the config"),
    ('analysis/get_flops.py', ['--arch', 'glnet-5g'], 2, "Unknown arch 'glnet-5g'"),
    ('analysis/compare_with_upstream.py', ['--glmix-repo', 'FAKE_REPO'], 2,
     r"Importing the upstream GLNet failed \(No module named 'fairscale_not_installed'\); it "
     r'needs timm and fairscale'),
    ('make_pretrain_data.py', ['--out', 'OTHER_FILES', '--num-train', '1', '--num-val', '1'], 2,
     'that make_pretrain_data.py did not write'),
])
def test_every_tool_answers_our_errors_in_one_line(tool, args, code, message, bad_files,
                                                   images, demo_options, tmp_path, capsys,
                                                   monkeypatch):
    typo = tmp_path / 'typo.py'
    typo.write_text(f"_base_ = '{DEMO}'\nmodel = dict(backbone=dict(type='GLNett'))\n")
    (tmp_path / 'repo' / 'models').mkdir(parents=True)
    (tmp_path / 'repo' / 'models' / 'glnet.py').write_text('import fairscale_not_installed\n')
    (tmp_path / 'other' / 'train' / 'square').mkdir(parents=True)
    (tmp_path / 'other' / 'train' / 'square' / 'mine.png').write_bytes(b'x')
    values = dict(bad_files, IMG=str(images['folder'] / 'rgb.png'), OUT=str(tmp_path / 'o.pth'),
                  TYPO=str(typo), FAKE_REPO=str(tmp_path / 'repo'),
                  OTHER_FILES=str(tmp_path / 'other'))
    argv = []
    for arg in args:
        if arg == 'DEMO_OPTIONS':
            argv += demo_options
        else:
            name, equals, value = arg.rpartition('=')
            argv.append(name + equals + values.get(value, value) if equals else
                        values.get(arg, arg))
    argv = ['--work-dir', str(tmp_path / 'work'), *argv] if tool in ('train.py', 'test.py') \
        else argv
    monkeypatch.setattr(sys, 'path', list(sys.path))  # compare_with_upstream adds the repo
    modules = set(sys.modules)
    try:
        assert helpers.load_tool(tool).main(argv) == code
    finally:  # the fake repo's models package
        for name in set(sys.modules) - modules:
            if name.split('.')[0] == 'models':
                del sys.modules[name]
    line = the_error(capsys)
    assert re.search(message, line), line
    assert not (tmp_path / 'o.pth').exists()
