"""glmix_mm.models.converters.glnet_to_mm and tools/model_converters/glnet2mm.py: formats,
arch recognition, refusal, classifier logits."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from glmix_mm.models import GLNet

from fakes import random_upstream_checkpoint
from helpers import ROOT, run_tool


@pytest.fixture(scope='module')
def upstream_stl(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'glnet_stl.pth'
    torch.save(random_upstream_checkpoint('stl'), path)
    return path


def test_backbone_format_round_trip(upstream_stl, tmp_path):
    dst = tmp_path / 'mm.pth'
    assert run_tool('model_converters/glnet2mm.py', upstream_stl, dst) == 0
    converted = torch.load(dst, weights_only=True)  # plain tensors and strings
    assert converted['meta']['arch'] == 'stl'
    assert all(k.startswith('backbone.') for k in converted['state_dict'])
    assert not any(k.startswith(('backbone.head.', 'backbone.norm.'))
                   for k in converted['state_dict'])
    x = torch.randn(1, 3, 64, 64)
    outs = []
    for ckpt in (upstream_stl, dst):
        model = GLNet('stl', init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
        model.init_weights()
        with torch.no_grad():
            outs.append(model.eval()(x))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


def test_classifier_format_gives_upstream_logits(upstream_stl, tmp_path):
    dst = tmp_path / 'cls.pth'
    assert run_tool('model_converters/glnet2mm.py', upstream_stl, dst, '--cls') == 0
    state = torch.load(dst, weights_only=True)['state_dict']
    assert 'head.fc.weight' in state and 'backbone.norm3.running_var' in state
    cfg = Config.fromfile(osp.join(ROOT, 'configs/glnet_stl_in1k.py'))
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    classifier = MODELS.build(cfg.model).eval()
    classifier.load_state_dict(state)
    # Upstream: logits = head(mean_hw(BN(stage-4 map))), with the released key names.
    src = random_upstream_checkpoint('stl')['model']
    backbone = GLNet('stl', out_norm=None).eval()
    backbone.load_state_dict({k: v for k, v in src.items()
                              if not k.startswith(('head.', 'norm.'))})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        last = backbone(x)[-1]
        normed = torch.nn.functional.batch_norm(last, src['norm.running_mean'],
                                                src['norm.running_var'], src['norm.weight'],
                                                src['norm.bias'], eps=1e-5)
        expected = normed.mean((2, 3)) @ src['head.weight'].T + src['head.bias']
        torch.testing.assert_close(classifier(x, mode='tensor'), expected, rtol=1e-4,
                                   atol=1e-4)


def test_refuses_files_that_are_no_glnet(tmp_path, capsys):
    bad = tmp_path / 'r50.pth'
    torch.save({'state_dict': {'conv1.weight': torch.zeros(64, 3, 7, 7)}}, bad)
    assert run_tool('model_converters/glnet2mm.py', bad, tmp_path / 'out.pth') == 1
    err = capsys.readouterr().err
    assert 'fits no GLNet arch' in err and 'conv1.weight' in err
    assert not (tmp_path / 'out.pth').exists()
    assert run_tool('model_converters/glnet2mm.py', tmp_path / 'missing.pth',
                    tmp_path / 'o.pth') == 2
