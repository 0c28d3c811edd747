"""tools/analysis/pretrain_finetune.py: its rows are the comparison they claim to be, and it reads
and tabulates what the runs logged."""
import argparse
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config, DictAction

from glmix_mm.errors import GLMixMMError
from helpers import ROOT, load_tool

pf = load_tool('analysis/pretrain_finetune.py')


def configured(run: pf.Run) -> Config:
    """The config a row trains with: its file plus its --cfg-options, as tools/train.py merges
    them."""
    cfg = Config.fromfile(osp.join(ROOT, run.config))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *run.options] if run.options
                                          else []).cfg_options)
    return cfg


@pytest.mark.parametrize('stage', ['det', 'seg'])
def test_rows_are_the_two_by_two_comparison_and_the_reference(stage):
    rows = pf.finetune_runs(stage)
    seen = set()
    for run in rows[:4]:
        backbone = configured(run).model.backbone
        assert backbone.type == 'GLNet' and backbone.norm_eval and backbone.drop_path_rate > 0
        pretrained = backbone.init_cfg is not None
        assert pretrained == (run.init == 'pretrained')
        if pretrained:
            assert backbone.init_cfg.checkpoint == pf.GLNET_CKPT
        ln = backbone.out_norm is not None
        assert ln == run.outputs.startswith('LayerNorm')
        seen.add((pretrained, ln))
    assert len(seen) == 4
    reference = configured(rows[4]).model.backbone
    assert reference.type == 'ResNet' and reference.depth == 50
    assert reference.init_cfg.checkpoint == pf.R50_CKPT
    assert reference.init_cfg.prefix == 'backbone.'


def write_scalars(work_dir, records) -> None:
    folder = work_dir / '20261202_000000' / 'vis_data'
    folder.mkdir(parents=True)
    (folder / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in records))


def test_last_metrics_is_the_last_validation(tmp_path, monkeypatch):
    monkeypatch.setattr(pf, 'ROOT', str(tmp_path))
    write_scalars(tmp_path / 'run', [
        dict(loss=1.0, lr=0.1, step=1), {'coco/bbox_mAP': 0.1, 'step': 1},
        dict(loss=0.5, lr=0.1, step=2), {'coco/bbox_mAP': 0.4, 'step': 2},
        dict(loss=0.4, lr=0.1, step=3)])
    assert pf.last_metrics('run') == {'coco/bbox_mAP': 0.4, 'step': 2}
    with pytest.raises(GLMixMMError, match='no MMEngine scalars.json'):
        pf.last_metrics('missing')


def test_results_are_merged_and_tabulated(tmp_path, monkeypatch):
    monkeypatch.setattr(pf, 'ROOT', str(tmp_path))
    (tmp_path / 'wd').mkdir()
    first, second = pf.Results('wd'), pf.Results('wd')  # e.g. two invocations at once
    det = pf.finetune_runs('det')
    first.add(det[0].name, dict(det[0]._asdict(), seconds=10, **{'coco/bbox_mAP': 0.5,
                                                                'coco/segm_mAP': 0.25}))
    second.add(det[4].name, dict(det[4]._asdict(), seconds=20, **{'coco/bbox_mAP': 0.125,
                                                                 'coco/segm_mAP': 0.0}))
    results = first.read()
    assert set(results) == {det[0].name, det[4].name}
    table = (tmp_path / 'wd' / 'results.md').read_text()
    assert '| GLNet-4G | pretrained | LayerNorm (shipped) | 0.500 | 0.250 | 10 |' in table
    assert '| ResNet-50 | pretrained |' in table and '0.125' in table


def test_a_failing_run_names_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(pf, 'ROOT', str(tmp_path))
    log = str(tmp_path / 'row.log')
    cmd = [sys.executable, '-c', 'import sys; print("boom"); sys.exit(3)']
    with pytest.raises(GLMixMMError, match=f'exited with 3; its output is in {log}'):
        pf.run_logged(cmd, log, threads=1)
    assert 'boom' in open(log).read()
