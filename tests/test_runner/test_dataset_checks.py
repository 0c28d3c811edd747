"""glmix_mm/runner/dataset_checks.py, check_datasets: a missing or unusable dataset is named
before training with the options or the download that fix it (through tools/train.py:
tests/test_tools/test_bad_input.py)."""
import json
import os
import os.path as osp

import pytest
from helpers import DEMO, ROOT, truncate_file
from mmengine.config import Config

from glmix_mm.runner import BadDatasetError, DatasetNotFoundError, check_datasets

COCO = osp.join(ROOT, 'configs/maskrcnn_glnet_4g_coco.py')


def demo_cfg(root: str) -> Config:
    """The demo detection config on the COCO-format data under ``root``."""
    cfg = Config.fromfile(DEMO)
    ann = osp.join(root, 'annotations/instances_val.json')
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root, 'val_evaluator.ann_file': ann,
        'test_evaluator.ann_file': ann})
    return cfg


def test_missing_dataset_hint_fixes_every_loader_and_evaluator(demo_data, tmp_path,
                                                               monkeypatch):
    """The --cfg-options of the message, with the placeholder replaced by a real copy, make
    every dataloader and evaluator of the config find its data."""
    monkeypatch.chdir(tmp_path)  # the config's relative data_root does not exist here
    cfg = Config.fromfile(DEMO)
    with pytest.raises(DatasetNotFoundError) as error:
        check_datasets(cfg, ('train_dataloader', 'val_dataloader'))
    problem, fix = str(error.value).splitlines()
    assert problem.startswith('The demo dataset not found: data/demo/coco/annotations/'
                              'instances_train.json') and 'train_dataloader' in problem
    assert fix.startswith('Generate it with `python tools/make_demo_data.py --out data/demo`')
    options = fix.split('--cfg-options ')[1].split()
    assert {o.split('=')[0] for o in options} == {
        'train_dataloader.dataset.data_root', 'val_dataloader.dataset.data_root',
        'test_dataloader.dataset.data_root', 'val_evaluator.ann_file', 'test_evaluator.ann_file'}
    real = f'{demo_data}/coco/'
    cfg.merge_from_dict(dict(o.replace('/path/to/coco/', real).split('=', 1) for o in options))
    check_datasets(cfg)  # nothing missing any more: train, val, test and both evaluators


def test_missing_coco_names_the_download_and_the_evaluator(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError) as error:
        check_datasets(Config.fromfile(COCO), ('test_dataloader', ))
    problem, fix = str(error.value).splitlines()
    assert problem == ('COCO 2017 not found: data/coco/annotations/instances_val2017.json, '
                       'data/coco/val2017/ does not exist (test_dataloader).')
    assert 'cocodataset.org' in fix
    assert 'test_evaluator.ann_file=/path/to/coco/annotations/instances_val2017.json' in fix


def _rewrite(path: str, change) -> None:
    with open(path) as f:
        content = json.load(f)
    change(content)
    with open(path, 'w') as f:
        json.dump(content, f)


def _empty(path):
    open(path, 'w').close()


def _html(path):
    with open(path, 'w') as f:
        f.write('<html><body>Not Found</body></html>')


@pytest.mark.parametrize('damage,message', [
    (truncate_file, r'instances_train\.json is not valid JSON \(.*\): truncated or edited by '
     r'hand\? \(train_dataloader\)'),
    (_empty, r'instances_train\.json is empty \(0 bytes\)'),
    (_html, r"instances_train\.json is not JSON: it starts with b'<html><body>Not Found"),
    (lambda p: _rewrite(p, lambda c: c.update(images=[], annotations=[])),
     r'instances_train\.json lists no images'),
    (lambda p: _rewrite(p, lambda c: c.update(annotations=[])),
     r'instances_train\.json has no annotations: training needs at least one object'),
    (lambda p: os.remove(osp.join(osp.dirname(osp.dirname(p)), 'train', 'train_00002.png')),
     r'instances_train\.json lists 1 image\(s\) of 8 that are not in .*train/ \(e\.g\. '
     r'train_00002\.png\)'),
])
def test_unusable_annotation_file_is_named_before_training(coco_copy, damage, message):
    damage(osp.join(coco_copy, 'annotations/instances_train.json'))
    with pytest.raises(BadDatasetError, match=message):
        check_datasets(demo_cfg(coco_copy), ('train_dataloader', 'val_dataloader'))


def test_classes_missing_from_the_annotation_file(coco_copy):
    cfg = demo_cfg(coco_copy)
    cfg.train_dataloader.dataset.metainfo = dict(classes=('square', 'circle'))
    with pytest.raises(BadDatasetError, match=r"no category named 'circle' \(its categories: "
                       r'square, disc, triangle\); set metainfo\.classes'):
        check_datasets(cfg)


def test_the_demo_data_passes_the_checks(coco_copy):
    check_datasets(demo_cfg(coco_copy))
