"""tools/model_converters/mm2glnet.py: an MMPretrain GLNet classifier checkpoint written in the
upstream release layout reads back, through every reader of releases, as the weights it holds."""

import pytest
import torch
from mmengine.hooks import EMAHook
from mmengine.model import ExponentialMovingAverage
from mmengine.registry import init_default_scope

from glmix_mm.models.converters import glnet_to_mm, glnet_upstream_names
from glmix_mm.models import GLNet
from glmix_mm.checkpoint import load_local_checkpoint

from fakes import random_upstream_checkpoint
from helpers import run_tool


@pytest.fixture(scope='module')
def release():
    return random_upstream_checkpoint('stl')


def test_classifier_checkpoint_round_trips_to_the_release_layout(release, tmp_path):
    classifier = glnet_to_mm(release, cls=True)  # what MMPretrain saves, without EMA
    src, dst = tmp_path / 'epoch_3.pth', tmp_path / 'release.pth'
    classifier['meta']['epoch'] = 3
    torch.save(classifier, src)
    assert run_tool('model_converters/mm2glnet.py', src, dst) == 0
    written = load_local_checkpoint(str(dst), 'cpu')
    assert set(written) == {'model', 'epoch', 'args'} and written['epoch'] == 3
    assert written['args']['model'] == 'glnet_stl'
    assert written['model'].keys() == release['model'].keys()
    assert all(torch.equal(written['model'][k], v) for k, v in release['model'].items())


def classifier_of(state_dict: dict) -> torch.nn.Module:
    """MMPretrain's ImageClassifier for GLNet-STL, as configs/glnet_stl_in1k.py builds it."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='GLNet', arch='stl', out_indices=(3, ), out_norm=dict(type='BN')),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768)))
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    assert set(missing) <= {'backbone.norm3.num_batches_tracked'} and not unexpected
    return model


def test_ema_checkpoint_keeps_both_weight_sets_where_releases_have_them(release, tmp_path):
    model = classifier_of(glnet_to_mm(release, cls=True)['state_dict'])
    ema = ExponentialMovingAverage(model, momentum=0.5, update_buffers=True)
    ema.update_parameters(model)  # the first update copies the weights
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.)
    ema.update_parameters(model)  # EMA = trained - 0.5
    hook = EMAHook(update_buffers=True)
    hook.ema_model = ema
    checkpoint = dict(state_dict=model.state_dict(), meta=dict(epoch=7))
    hook.before_save_checkpoint(None, checkpoint)  # MMEngine swaps: state_dict holds the EMA
    src, dst = tmp_path / 'epoch_7.pth', tmp_path / 'release.pth'
    torch.save(checkpoint, src)
    assert run_tool('model_converters/mm2glnet.py', src, dst) == 0
    written = load_local_checkpoint(str(dst), 'cpu')
    assert set(written) == {'model', 'model_ema', 'epoch', 'args'} and written['epoch'] == 7
    trained = glnet_upstream_names(model.state_dict())
    assert written['model'].keys() == trained.keys()
    assert all(torch.equal(written['model'][k], v) for k, v in trained.items())
    key = 'stages.0.blocks.0.mlp.0.weight'
    assert torch.allclose(written['model_ema'][key], trained[key] - 0.5)
    # init_cfg=dict(type='Pretrained') reads it as a release: the trained weights for this arch.
    backbone = GLNet('stl', out_norm=None,
                     init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    backbone.init_weights()
    assert all(torch.equal(v, trained[k]) for k, v in backbone.state_dict().items())


def test_a_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    src = tmp_path / 'resnet.pth'
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(64, 3, 7, 7),
                                'head.fc.weight': torch.zeros(12, 2048)}, meta={}), src)
    assert run_tool('model_converters/mm2glnet.py', src, tmp_path / 'out.pth') == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f'error: {src}: The checkpoint fits no GLNet arch')
    assert not (tmp_path / 'out.pth').exists()


def test_a_non_pth_destination_is_refused(tmp_path, capsys):
    assert run_tool('model_converters/mm2glnet.py', tmp_path / 'a.pth',
                    tmp_path / 'b.safetensors') == 2  # a usage error
    assert 'torch.save file; give a .pth path' in capsys.readouterr().err
