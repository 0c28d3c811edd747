"""Tests of the dense Conformer backbone (glmix_mm.models.conformer)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from glmix_mm.models.converters import conformer_to_mm
from glmix_mm.models import conformer as conformer_module
from glmix_mm.models.conformer import Conformer

from fakes import build, features, heads, load_into, to_upstream

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ARCHS = [('tiny', 16), ('small', 16), ('small', 32), ('base', 16)]
# MMPretrain's model zoo (with the two classification heads), in millions.
PUBLISHED_PARAMS_M = {('tiny', 16): 23.52, ('small', 16): 37.67, ('small', 32): 38.85,
                      ('base', 16): 83.29}
def assert_same(outs_a, outs_b) -> None:
    assert len(outs_a) == len(outs_b)
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('arch,patch_size', ARCHS)
def test_output_shapes(arch, patch_size):
    model = build(arch, patch_size)
    outs = features(model, torch.randn(2, 3, 64, 96))
    ratio = Conformer.arch_zoo[arch]['channel_ratio']
    expected = [64 * ratio, 128 * ratio, 256 * ratio, 256 * ratio]
    assert model.out_channels == tuple(expected)
    assert [o.shape for o in outs] == [
        (2, c, 64 // s, 96 // s) for c, s in zip(expected, Conformer.strides)
    ]


def test_known_channels():
    assert build('small', 16).out_channels == (256, 512, 1024, 1024)
    assert build('base', 16).out_channels == (384, 768, 1536, 1536)
    assert Conformer(arch='tiny', out_indices=(3, 1)).out_channels == (128, 256)


def test_out_indices_select_the_same_maps():
    x = torch.randn(1, 3, 64, 64)
    full = features(build(), x)
    model = Conformer(arch='tiny', out_indices=(1, 3))
    model.load_state_dict(build().state_dict())
    assert_same(features(model.eval(), x), (full[1], full[3]))
    model = Conformer(arch='tiny', out_indices=(0, ))
    model.load_state_dict(build().state_dict())
    assert_same(features(model.eval(), x), full[:1])


@pytest.mark.parametrize('arch,patch_size', ARCHS)
def test_parameter_counts_match_published(arch, patch_size):
    from mmpretrain.models import Conformer as MMPretrainConformer
    model = build(arch, patch_size)
    ours = sum(p.numel() for p in model.parameters())
    classifier = sum(t.numel() for t in heads(arch).values())
    reference = MMPretrainConformer(arch=arch, patch_size=patch_size)
    head_only = sum(t.numel() for k, t in heads(arch).items() if not k.startswith('trans_norm'))
    assert ours + classifier == sum(p.numel() for p in reference.parameters()) + head_only
    assert round((ours + classifier) / 1e6, 2) == PUBLISHED_PARAMS_M[(arch, patch_size)]
    assert not any(k.startswith(('trans_norm', 'pooling')) for k in model.state_dict())


def test_checkpoint_formats_load_identically(tmp_path):
    reference = build()
    x = torch.randn(2, 3, 64, 96)
    expected = features(reference, x)
    ours = reference.state_dict()
    upstream = to_upstream(ours, 'tiny')
    assert 'conv_trans_2.trans_block.mlp.fc1.weight' in upstream
    mmpretrain = {f'backbone.{k}': v for k, v in ours.items()}
    for key, value in heads('tiny').items():  # trans_norm is in MMPretrain's backbone
        mmpretrain[f'backbone.{key}' if key.startswith('trans_norm') else f'head.{key}'] = value
    detector = {f'backbone.{k}': v for k, v in upstream.items()
                if not k.startswith(('conv_cls_head', 'trans_cls_head', 'trans_norm'))}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    files = {
        'upstream': {'model': upstream},  # the authors' release: their training checkpoint
        'upstream_plain': upstream,  # ... or its bare state dict
        'upstream_det': {'state_dict': detector, 'meta': {}},  # their MMDetection fork
        'mmpretrain': {'state_dict': mmpretrain, 'meta': {}},
    }
    for name, checkpoint in files.items():
        torch.save(checkpoint, tmp_path / f'{name}.pth')
    converted = conformer_to_mm(torch.load(tmp_path / 'upstream.pth'))
    torch.save(converted, tmp_path / 'converted.pth')
    assert converted['meta']['arch'] == 'tiny' and converted['meta']['patch_size'] == 16
    assert set(converted['state_dict']) == {f'backbone.{k}' for k in ours}

    for name in list(files) + ['converted']:
        assert_same(features(load_into(tmp_path / f'{name}.pth'), x), expected)


def test_wrong_checkpoint_raises_with_key_report(tmp_path):
    torch.save(to_upstream(build('small', 32).state_dict(), 'small'), tmp_path / 's32.pth')
    with pytest.raises(RuntimeError, match=r'shape mismatches: .*conv_1\.conv1\.weight'):
        load_into(tmp_path / 's32.pth', 'tiny')
    with pytest.raises(RuntimeError, match=r'shape mismatches: trans_patch_conv\.weight'):
        load_into(tmp_path / 's32.pth', 'small', 16)
    torch.save({'state_dict': {'backbone.layer1.0.conv1.weight': torch.zeros(1)}},
               tmp_path / 'resnet.pth')
    with pytest.raises(RuntimeError, match=r'missing keys: cls_token.*\n.*unexpected keys: layer1'):
        load_into(tmp_path / 'resnet.pth')
    with pytest.raises(ValueError, match='does not look like a Conformer'):
        conformer_to_mm(torch.load(tmp_path / 'resnet.pth'))
    with pytest.raises(FileNotFoundError):
        load_into(tmp_path / 'nope.pth')


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 4])
def test_frozen_stages(frozen_stages):
    model = Conformer(arch='tiny', frozen_stages=frozen_stages).train()
    # the stage group (0 = stem) that each top-level module of a depth-12 model belongs to
    groups = {'conv1': 0, 'bn1': 0, 'conv_1': 1, 'trans_patch_conv': 1, 'trans_1': 1}
    groups.update({f'conv_trans_{i}': 1 + (i > 4) + (i > 8) + (i > 11) for i in range(2, 13)})
    for name, group in groups.items():
        module = getattr(model, name)
        frozen = group <= frozen_stages
        assert all(p.requires_grad != frozen for p in module.parameters()), name
        assert all(m.training != frozen for m in module.modules()), name
    assert model.cls_token.requires_grad == (frozen_stages < 1)


def test_norm_eval():
    model = Conformer(arch='tiny', norm_eval=True)
    model.load_state_dict(build().state_dict())
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert model.trans_1.training and model.conv_1.conv1.training
    before = model.bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(model.bn1.running_mean, before)
    assert all(m.training for m in Conformer(arch='tiny').train().modules())


def test_with_cp_same_outputs_and_gradients(monkeypatch):
    calls = []
    checkpoint = conformer_module.cp.checkpoint
    monkeypatch.setattr(conformer_module.cp, 'checkpoint',
                        lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    results = []
    for with_cp in (False, True):
        model = Conformer(arch='tiny', with_cp=with_cp, drop_path_rate=0.2)
        model.load_state_dict(build().state_dict())
        model.train()
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1),
                        requires_grad=True)
        torch.manual_seed(2)
        outs = model(x)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        results.append((outs, x.grad, grads))
    assert len(calls) == 13  # conv_1, trans_1 and the eleven conv_trans blocks
    (outs_a, x_grad_a, grads_a), (outs_b, x_grad_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(x_grad_a, x_grad_b)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)
    model.eval()
    features(model, torch.randn(1, 3, 64, 64))
    assert len(calls) == 13


def test_input_sizes():
    small32 = build('small', 32)
    # detection sizes (multiples of 32) work for both patch sizes
    for model in (build(), small32):
        assert features(model, torch.randn(1, 3, 160, 224))[3].shape[2:] == (5, 7)
    # the real rule: ceil(H / 4) and ceil(W / 4) are multiples of patch_size / 4
    assert features(build(), torch.randn(1, 3, 61, 77))[0].shape[2:] == (16, 20)
    assert features(small32, torch.randn(1, 3, 29, 32))[0].shape[2:] == (8, 8)


@pytest.mark.parametrize('arch,patch_size,shape', [
    ('tiny', 16, (3, 64, 64)),
    ('tiny', 16, (1, 1, 64, 64)),
    ('tiny', 16, (1, 3, 60, 64)),
    ('tiny', 16, (1, 3, 64, 72)),
    ('small', 32, (1, 3, 48, 64)),
])
def test_bad_inputs_raise_value_error(arch, patch_size, shape, monkeypatch):
    model = build(arch, patch_size)
    with pytest.raises(ValueError, match=r'Conformer'):
        features(model, torch.randn(*shape))
    if len(shape) == 4 and shape[1] == 3:
        # without the check the network itself fails on these sizes: the check is not stricter
        monkeypatch.setattr(Conformer, '_check_input', lambda self, x: None)
        with pytest.raises(RuntimeError):
            features(model, torch.randn(*shape))


@pytest.mark.parametrize('kwargs,message', [
    (dict(arch='huge'), r"Unknown Conformer arch 'huge'.*'small'.*'tiny'"),
    (dict(arch=dict(embed_dims=384, depths=12, num_heads=6)), r"missing \['channel_ratio'\]"),
    (dict(arch=dict(embed_dims=384, depths=10, num_heads=6, channel_ratio=1)), 'multiple of 3'),
    (dict(patch_size=8), r'patch_size \(16, 32\)'),
    (dict(out_indices=(0, 4)), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conformer(**kwargs)


def test_custom_arch_dict():
    model = Conformer(arch=dict(embed_dims=96, depths=6, num_heads=3, channel_ratio=1))
    outs = features(model.eval(), torch.randn(1, 3, 64, 64))
    assert model.out_blocks == (2, 4, 5, 6)
    assert [o.shape[1:] for o in outs] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (256, 2, 2)]


def test_registry_scopes(tmp_path):
    import glmix_mm.models
    assert getattr(glmix_mm.models, 'Conformer', None) is Conformer, \
        'glmix_mm/models/__init__.py must import Conformer for custom_imports=["glmix_mm"]'
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.models import Conformer as MMPretrainConformer
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    config = tmp_path / 'config.py'
    config.write_text("custom_imports = dict(imports=['glmix_mm'])\n"
                      "backbone = dict(type='Conformer', arch='tiny')\n")
    cfg = Config.fromfile(str(config))
    for scope, registry in (('mmdet', DET_MODELS), ('mmseg', SEG_MODELS)):
        with DefaultScope.overwrite_default_scope(scope):
            assert type(registry.build(cfg.backbone)) is Conformer, scope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        assert type(PRETRAIN_MODELS.build(cfg.backbone)) is MMPretrainConformer
        assert type(PRETRAIN_MODELS.build(dict(cfg.backbone, type='glmix_mm.Conformer'))) \
            is Conformer
