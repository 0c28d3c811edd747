"""glmix_mm.timm: GLNet and Conformer through timm's ``create_model``: every release registered,
``features_only`` maps and ``feature_info``, pretrained files through glmix_mm's loader, and the
same numbers as the MMEngine backbones and the MMPretrain classifiers on the same weights."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from glmix_mm.checkpoint import CheckpointMismatchError
from glmix_mm.models.converters import glnet_to_mm
from glmix_mm.models import Conformer, GLNet

from fakes import UPSTREAM_NAMES, randomize, random_upstream_checkpoint

timm = pytest.importorskip('timm', reason='timm is not installed (pip install -e ".[timm]")')
import glmix_mm.timm  # noqa: E402,F401 (registers the models)
from helpers import ROOT

# The released models, upstream's names.
NAMES = ['glnet_stl', 'glnet_stl_paramslot', 'glnet_4g', 'glnet_9g', 'glnet_16g', 'glnet_4g_tklb',
         'glnet_9g_tklb', 'conformer_tiny_patch16', 'conformer_small_patch16',
         'conformer_small_patch32', 'conformer_base_patch16']
# Parameters with the ImageNet heads, in millions, as published (README's model zoo).
PUBLISHED_PARAMS_M = {'glnet_stl': 30.3, 'conformer_tiny_patch16': 23.5}
GLNET_4G_CHANNELS = [64, 128, 256, 512]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def release_file(folder, arch: str) -> str:
    """A GLNet file of ``arch`` in the released layout (random weights and BN statistics)."""
    path = str(folder / f'glnet_{arch}.pth')
    torch.save(random_upstream_checkpoint(arch), path)
    return path


@pytest.fixture(scope='module')
def release_4g(tmp_path_factory):
    return release_file(tmp_path_factory.mktemp('timm'), '4g')


def test_every_release_is_registered_with_its_pretrained_config():
    assert sorted(timm.list_models(['glnet_*', 'conformer_*'])) == sorted(NAMES)
    for name in NAMES:
        cfg = timm.models.get_pretrained_cfg(name)
        assert cfg.num_classes == 1000 and cfg.input_size == (3, 224, 224)
        assert cfg.interpolation == 'bicubic' and cfg.crop_pct == 0.875
        assert not cfg.has_weights  # nothing to download: files come with pretrained_cfg_overlay


@pytest.mark.parametrize('name', list(PUBLISHED_PARAMS_M))
def test_smallest_releases_build_with_their_published_sizes(name):
    model = timm.create_model(name)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == PUBLISHED_PARAMS_M[name]
    assert model.get_classifier().out_features == 1000
    first_conv = model.get_submodule(model.pretrained_cfg['first_conv'])
    assert isinstance(first_conv, torch.nn.Conv2d) and first_conv.in_channels == 3
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert model.eval()(x).shape == (1, 1000)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (
            1, model.num_features)


def test_glnet_4g_features_equal_the_mmengine_backbone(release_4g):
    model = timm.create_model('glnet_4g', features_only=True, pretrained=True,
                              pretrained_cfg_overlay=dict(file=release_4g)).eval()
    assert model.feature_info.channels() == GLNET_4G_CHANNELS
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    assert model.feature_info.module_name() == [f'stages.{i}' for i in range(4)]
    assert not any(k.startswith(('model.head.', 'model.norm.')) for k in model.state_dict())
    backbone = GLNet('4g', out_norm=None, init_cfg=dict(type='Pretrained', checkpoint=release_4g))
    backbone.init_weights()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        maps, expected = model(x), backbone.eval()(x)
    assert [m.shape for m in maps] == [(2, c, 64 // s, 96 // s)
                                      for c, s in zip(GLNET_4G_CHANNELS, (4, 8, 16, 32))]
    assert all(torch.equal(m, e) for m, e in zip(maps, expected))


@pytest.mark.parametrize('out_indices,stages', [((1, 2), 3), ((-1, ), 4), ((0, ), 1)])
def test_out_indices_select_maps_and_prune_the_rest(out_indices, stages):
    model = timm.create_model('glnet_4g', features_only=True, out_indices=out_indices)
    kept = [GLNET_4G_CHANNELS[i] for i in out_indices]
    assert model.feature_info.channels() == kept
    assert len(model.model.stages) == len(model.model.downsample_layers) == stages
    with torch.no_grad():
        assert [m.shape[1] for m in model.eval()(torch.randn(1, 3, 64, 64))] == kept


def classifier_from_config(config: str, release: dict) -> torch.nn.Module:
    """The MMPretrain classifier of ``configs/<config>``, with the release converted as
    ``tools/model_converters/glnet2mm.py --cls`` converts it."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(Config.fromfile(osp.join(ROOT, 'configs', config)).model)
    model.load_state_dict(glnet_to_mm(release, cls=True)['state_dict'])
    return model.eval()


@pytest.mark.parametrize('arch', ['4g', '4g_tklb'])
def test_glnet_logits_equal_the_mmpretrain_classifier(arch, release_4g, tmp_path):
    path = release_4g if arch == '4g' else release_file(tmp_path, arch)
    model = timm.create_model(f'glnet_{arch}', pretrained=True,
                              pretrained_cfg_overlay=dict(file=path)).eval()
    reference = classifier_from_config(f'glnet_{arch}_in1k.py', torch.load(path))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, expected = model(x), reference(x, mode='tensor')
    assert logits.shape == (2, 1000)
    assert relative_error(logits, expected) < 1e-5


def test_conformer_logits_equal_the_mmpretrain_classifier(tmp_path):
    """An authors'-format file (their block names, heads at the top level) in timm, against
    MMPretrain's classifier (whose prediction is the sum of its two heads' logits)."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    reference = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='Conformer', arch='tiny', patch_size=16),
        head=dict(type='ConformerHead', num_classes=1000, in_channels=[256, 384])))
    randomize(reference)
    authors = {}
    for key, value in reference.state_dict().items():
        key = key.split('.', 1)[1]  # backbone. / head.
        for ours, theirs in UPSTREAM_NAMES.items():
            key = key.replace(ours, theirs)
        authors[key] = value
    path = str(tmp_path / 'Conformer_tiny_patch16.pth')
    torch.save(authors, path)
    model = timm.create_model('conformer_tiny_patch16', pretrained=True,
                              pretrained_cfg_overlay=dict(file=path)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, (conv, trans) = model(x), reference.eval()(x, mode='tensor')
    assert relative_error(logits, conv + trans) < 1e-5


def test_conformer_features_equal_the_mmengine_backbone(tmp_path):
    torch.manual_seed(0)
    backbone = Conformer('tiny', patch_size=16)
    randomize(backbone)
    path = str(tmp_path / 'conformer_tiny.pth')
    torch.save(backbone.state_dict(), path)
    model = timm.create_model('conformer_tiny_patch16', features_only=True, out_indices=(1, 3),
                              pretrained=True, pretrained_cfg_overlay=dict(file=path)).eval()
    assert model.feature_info.channels() == [128, 256]
    assert model.feature_info.reduction() == [8, 32]
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        maps, expected = model(x), backbone.eval()(x)
    assert [m.shape for m in maps] == [(1, 128, 8, 12), (1, 256, 2, 3)]
    assert torch.equal(maps[0], expected[1]) and torch.equal(maps[1], expected[3])


def test_pretrained_without_a_file_is_refused_in_one_line():
    with pytest.raises(ValueError) as error:
        timm.create_model('glnet_stl', pretrained=True)
    message = str(error.value)
    assert '\n' not in message
    assert "pretrained_cfg_overlay=dict(file='checkpoints/glnet_stl.pth')" in message


def test_a_file_that_does_not_fit_is_refused_as_mmengine_refuses_it(release_4g, tmp_path):
    release = torch.load(release_4g)
    release['model'] = {k: v for k, v in release['model'].items() if not k.startswith('stages.3')}
    path = str(tmp_path / 'glnet_4g_truncated.pth')
    torch.save(release, path)
    with pytest.raises(CheckpointMismatchError) as timm_error:
        timm.create_model('glnet_4g', pretrained=True, pretrained_cfg_overlay=dict(file=path))
    backbone = GLNet('4g', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointMismatchError) as mmengine_error:
        backbone.init_weights()
    first_line = str(mmengine_error.value).splitlines()[0]
    assert first_line == f"The checkpoint does not fit GLNet(arch='4g') (from {path})."
    assert str(timm_error.value).splitlines()[0] == first_line
    assert 'missing keys: stages.3.' in str(timm_error.value)


class WritesMarker:
    """What a malicious file holds: unpickled by plain pickle, it writes a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


def test_nothing_in_a_file_runs_and_timms_adaptations_apply(release_4g, tmp_path):
    """A release whose ``args`` would run code when unpickled loads, inertly; another number
    of classes keeps the head's initialisation, another input width adapts the first conv."""
    release = torch.load(release_4g)
    marker = str(tmp_path / 'payload_ran')
    release['args'] = WritesMarker(marker)
    path = str(tmp_path / 'glnet_4g_with_args.pth')
    torch.save(release, path)
    model = timm.create_model('glnet_4g', pretrained=True, num_classes=10, in_chans=1,
                              pretrained_cfg_overlay=dict(file=path))
    assert not os.path.exists(marker)
    weights = release['model']
    assert model.head.weight.shape == (10, 512)
    assert torch.equal(model.norm.running_var, weights['norm.running_var'])
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items() if k.startswith('stages.'))
    first_conv = weights['downsample_layers.0.1.weight']
    torch.testing.assert_close(model.downsample_layers[0][1].weight,
                               first_conv.sum(dim=1, keepdim=True))


@pytest.mark.parametrize('kwargs,message', [
    (dict(output_stride=16), 'no dilated form'),
    (dict(global_pool='max'), "global_pool must be 'avg'"),
    (dict(out_indices=(0, 1)), 'features_only=True'),
])
def test_options_the_models_do_not_have_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timm.create_model('glnet_stl', **kwargs)
