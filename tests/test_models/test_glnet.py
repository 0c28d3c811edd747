"""GLNet backbone: architectures, outputs, weights, freezing and registration."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope

from glmix_mm.models import GLNet

from fakes import random_upstream_checkpoint
from glmix_mm.compat import has_torch

# Run here with torch 2.12; torch 2.1's CPU autocast takes bfloat16 only.
FP16_CPU_AUTOCAST = pytest.mark.skipif(not has_torch('2.12'),
                                       reason='float16 CPU autocast (torch 2.1: bfloat16 only)')

# Published parameter counts (millions) of the ImageNet models, with the 1000-class head.
PUBLISHED_PARAMS = {'stl': 30.3, 'stl-paramslot': 30.5, '4g': 27.0, '9g': 60.0, '16g': 106.1}
ARCHS = list(PUBLISHED_PARAMS)




@pytest.mark.parametrize('arch', ARCHS)
def test_parameter_count_matches_published(arch):
    model = GLNet(arch, out_norm=None)
    dims = model.arch_settings['embed_dims'][-1]
    head_and_pre_head_norm = dims * 1000 + 1000 + 2 * dims
    total = sum(p.numel() for p in model.parameters()) + head_and_pre_head_norm
    assert round(total / 1e6, 1) == PUBLISHED_PARAMS[arch]


@pytest.mark.parametrize('arch', ['stl', '4g'])
@pytest.mark.parametrize('size', [(64, 96), (67, 93)])
def test_multiscale_outputs_strides_and_channels(arch, size):
    model = GLNet(arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert len(outs) == 4
    for out, stride, channels in zip(outs, (4, 8, 16, 32), model.out_channels):
        assert out.shape == (2, channels, -(-size[0] // stride), -(-size[1] // stride))
        assert torch.isfinite(out).all()


def test_out_indices_and_out_norm():
    model = GLNet('stl', out_indices=(1, -1), out_norm=dict(type='BN'))
    assert model.out_channels == [192, 768]
    assert isinstance(model.norm3, nn.BatchNorm2d) and not hasattr(model, 'norm0')
    raw = GLNet('stl', out_indices=(3, ), out_norm=None)
    assert isinstance(raw.norm3, nn.Identity)
    with pytest.raises(ValueError, match='out_indices'):
        GLNet('stl', out_indices=(4, ))


def test_unknown_and_custom_archs():
    with pytest.raises(ValueError, match="Unknown GLNet arch 'tiny'.*'4g'"):
        GLNet('tiny')
    with pytest.raises(ValueError, match='missing keys'):
        GLNet(dict(depths=[1, 1, 1, 1]))
    custom = dict(GLNet.arch_zoo['4g'], depths=[1, 1, 2, 1], embed_dims=[32, 64, 64, 64],
                  num_slots=16)
    model = GLNet(custom).eval()
    assert model.arch_name == 'custom'
    assert [o.shape[1] for o in model(torch.randn(1, 3, 64, 64))] == [32, 64, 64, 64]
    assert GLNet('9g_tklb').arch_name == '9g'


def test_bad_inputs_raise_clear_errors():
    model = GLNet('stl')
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        model(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\), got \(1, 1, 64, 64\)'):
        model(torch.randn(1, 1, 64, 64))


def test_loads_released_checkpoint_as_is_and_ignores_head(tmp_path):
    ckpt = random_upstream_checkpoint('stl')
    path = tmp_path / 'glnet_stl.pth'
    torch.save(ckpt, path)
    model = GLNet('stl', out_norm=None, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    state = model.state_dict()
    for k, v in ckpt['model'].items():
        if not k.startswith(('head.', 'norm.')):
            assert torch.equal(state[k], v), k
    # The same weights in OpenMMLab layout (whole detector, with neck keys) load identically.
    det = {'state_dict': {**{'backbone.' + k: v for k, v in state.items()},
                          'neck.lateral_convs.0.conv.weight': torch.zeros(1)}}
    torch.save(det, tmp_path / 'det.pth')
    other = GLNet('stl', out_norm=None,
                  init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'det.pth')))
    other.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model.eval()(x), other.eval()(x)):
            assert torch.equal(a, b)


def test_output_norms_keep_their_init_when_checkpoint_lacks_them(tmp_path):
    torch.save(random_upstream_checkpoint('stl'), tmp_path / 'c.pth')
    model = GLNet('stl', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'c.pth')))
    model.init_weights()
    assert torch.equal(model.norm2.weight, torch.ones(384))


def test_prefers_ema_weights_for_16g(tmp_path):
    ckpt = random_upstream_checkpoint('16g')
    ema = ckpt['model']
    ckpt = {'model': {k: v + 1 if v.is_floating_point() else v for k, v in ema.items()},
            'model_ema': ema}
    torch.save(ckpt, tmp_path / '16g.pth')
    model = GLNet('16g', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / '16g.pth')))
    model.init_weights()
    key = 'stages.2.blocks.1.mha_op.in_proj_weight'
    assert torch.equal(model.state_dict()[key], ema[key])


def test_wrong_checkpoint_is_refused_with_key_report(tmp_path):
    torch.save(random_upstream_checkpoint('4g'), tmp_path / '4g.pth')
    model = GLNet('9g', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / '4g.pth')))
    with pytest.raises(RuntimeError, match=r"GLNet\(arch='9g'\)[\s\S]*shape mismatches: "
                       r'downsample_layers'):
        model.init_weights()
    torch.save({'state_dict': {'conv1.weight': torch.zeros(64, 3, 7, 7)}}, tmp_path / 'r50.pth')
    model = GLNet('4g', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'r50.pth')))
    with pytest.raises(RuntimeError, match=r'missing keys[\s\S]*unexpected keys: conv1.weight'):
        model.init_weights()
    model = GLNet('4g', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'no.pth')))
    with pytest.raises(FileNotFoundError, match='checkpoints/'):
        model.init_weights()


def test_frozen_stages_stay_frozen_in_train_mode():
    model = GLNet('stl', frozen_stages=2)
    model.train()
    frozen = [model.downsample_layers[0], model.downsample_layers[1], model.stages[0],
              model.stages[1], model.norm0, model.norm1]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    assert model.stages[2].training and model.downsample_layers[2].training
    assert all(p.requires_grad for p in model.stages[2].parameters())
    with pytest.raises(ValueError, match='frozen_stages'):
        GLNet('stl', frozen_stages=5)


def test_norm_eval_keeps_batch_norms_in_eval():
    model = GLNet('4g', norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert model.stages[0].training
    stats = bns[0].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(bns[0].running_mean, stats)


def test_with_cp_gives_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = GLNet('4g', drop_path_rate=0.).train()
    ckpt = GLNet('4g', with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for model in (plain, ckpt):
        sum(o.square().mean() for o in model(x)).backward()
        grads.append(model.stages[2].blocks[1].mha_op.in_proj_weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    assert grads[0].abs().sum() > 0


def build_pair(arch: str, **kwargs) -> tuple:
    """The default GLNet and a variant with ``kwargs``, sharing random weights."""
    torch.manual_seed(0)
    ref = GLNet(arch, out_norm=None).eval()
    for p in ref.parameters():
        p.data.normal_(0, 0.1)
    other = GLNet(arch, out_norm=None, **kwargs).eval()
    other.load_state_dict(ref.state_dict())
    return ref, other


@pytest.mark.parametrize('arch', ['stl', '4g'])
def test_channels_last_layout_gives_same_contiguous_outputs(arch):
    channels_last, plain = build_pair(arch, channels_last=False)
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        for a, b in zip(channels_last(x), plain(x)):
            assert a.is_contiguous() and b.is_contiguous()
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('arch', ['stl', '4g'])
def test_kernels_have_the_layout_of_their_gradients(arch):
    """Channels-last blocks store their kernels channels-last, so that each gradient has the
    strides of its parameter (DDP otherwise copies it at every step), also after loading a
    contiguous state dict; the stem, fed NCHW images, stays contiguous."""
    model = GLNet(arch, out_norm=None).train()
    model.load_state_dict({k: v.contiguous() for k, v in GLNet(arch).state_dict().items()},
                          strict=False)
    sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    convs = [(n, p) for n, p in model.named_parameters() if p.dim() == 4]
    assert len(convs) > 10
    differ = [n for n, p in model.named_parameters() if p.grad.stride() != p.stride()]
    assert differ == []
    assert all(p.is_contiguous(memory_format=torch.channels_last) for n, p in convs
               if not n.startswith('downsample_layers.0.'))
    plain = GLNet(arch, channels_last=False)
    assert all(p.is_contiguous() for p in plain.parameters())


@pytest.mark.parametrize('arch', ['stl', '4g'])
def test_mhsa_window_is_global_when_it_covers_the_map(arch):
    glob, win = build_pair(arch, mhsa_window=14)
    x = torch.randn(1, 3, 224, 224)  # stage 3: 14x14, stage 4: 7x7
    with torch.no_grad():
        for a, b in zip(glob(x), win(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('arch', ['stl', '4g'])
def test_mhsa_window_attends_locally_in_the_attention_stages_only(arch):
    glob, win = build_pair(arch, mhsa_window=2)
    assert all(b.window == 2 for s in win.stages for b in s.blocks if hasattr(b, 'window'))
    x = torch.randn(1, 3, 160, 224)  # stage 3: 10x14 (padded to whole windows), stage 4: 5x7
    with torch.no_grad():
        outs_glob, outs_win = glob(x), win(x)
    first_mhsa_stage = 3 if arch == 'stl' else 2
    for i, (a, b) in enumerate(zip(outs_glob, outs_win)):
        assert a.shape == b.shape and torch.isfinite(b).all()
        assert torch.equal(a, b) == (i < first_mhsa_stage)
    win.train()
    sum(o.mean() for o in win(x)).backward()
    assert all(p.grad is not None for p in win.parameters() if p.requires_grad)


@pytest.mark.parametrize('arch,window,dtype', [('4g', None, torch.bfloat16),
                                               ('stl', 2, torch.bfloat16),
                                               pytest.param('stl', None, torch.float16,
                                                            marks=FP16_CPU_AUTOCAST)])
def test_autocast_stays_finite_and_close_to_fp32(arch, window, dtype):
    """Mixed precision (CPU autocast here; the same ops run under CUDA autocast) in inference
    and in a training step: no NaN/inf, outputs and gradients close to fp32."""
    torch.manual_seed(0)
    model = GLNet(arch, mhsa_window=window)  # with the output LayerNorms of the detectors
    x = torch.randn(1, 3, 64, 64) * 3
    with torch.no_grad():
        ref = model.eval()(x)
        with torch.autocast('cpu', dtype=dtype):
            low = model(x)
    for a, b in zip(ref, low):
        assert torch.isfinite(b).all()
        assert (b.float() - a).norm() / a.norm() < 0.05
    grads = []
    for autocast in (False, True):
        model.zero_grad()
        with torch.autocast('cpu', dtype=dtype, enabled=autocast):
            loss = sum(o.float().square().mean() for o in model.train()(x))
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.isfinite(grads[1]).all()
    assert (grads[1] - grads[0]).norm() / grads[0].norm() < 0.1


def test_bad_mhsa_window_is_refused():
    with pytest.raises(ValueError, match='window'):
        GLNet('4g', mhsa_window=0)


def test_pretrained_argument_is_deprecated_alias():
    with pytest.warns(DeprecationWarning):
        model = GLNet('stl', pretrained='x.pth')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='x.pth')


@pytest.mark.parametrize('scope,registry_module', [('mmdet', 'mmdet.registry'),
                                                   ('mmseg', 'mmseg.registry'),
                                                   ('mmpretrain', 'mmpretrain.registry')])
def test_builds_by_name_from_each_library_scope(scope, registry_module):
    import importlib

    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    cfg = Config(dict(custom_imports=dict(imports=['glmix_mm'], allow_failed_imports=False)))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(scope)
    registry = importlib.import_module(registry_module).MODELS
    for name in ('GLNet', 'glmix_mm.GLNet'):
        model = registry.build(dict(type=name, arch='stl', out_indices=(3, )))
        assert isinstance(model, GLNet)
