"""glmix_mm/analysis/flops.py (tools/analysis/get_flops.py): published FLOPs of every arch, exact
attention counts, configs, error messages.

Every arch is traced once at 224x224 (one thread, which is faster than two on a shared 2-core
machine); the whole file takes about 25 s on 2 CPU cores.
"""
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from glmix_mm.analysis import flops as get_flops
from glmix_mm.analysis import zoo
from helpers import ROOT

ARCHS = zoo.OUR_ARCHS


@pytest.fixture(scope='module')
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def counted(single_thread):
    """``arch -> (model, Complexity at 224x224)``, computed on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            model = get_flops.build_arch(name)
            inputs = (get_flops.image_batch(1, (224, 224)), )
            cache[name] = model, get_flops.analyze(model, inputs, name)
        return cache[name]

    return get


@pytest.mark.parametrize('name', ARCHS)
def test_arch_matches_published_flops(counted, name):
    _, result = counted(name)
    published = zoo.BACKBONES[name].published
    assert abs(get_flops.relative_difference(result, published)) < 0.03, (
        f'{name}: {result.flops / 1e9:.3f} GFLOPs ({result.flops_without_attention / 1e9:.3f} '
        f'without attention), published {published.gflops}')
    # Fused attention runs in every arch and is counted; nothing that costs MACs is skipped.
    assert result.attention_flops > 0
    assert not {'aten::scaled_dot_product_attention', 'aten::matmul', 'aten::bmm'} & set(
        result.skipped_ops)


@pytest.mark.parametrize('name', ARCHS)
def test_parameter_count_is_the_models(counted, name):
    model, result = counted(name)
    assert result.params == sum(p.numel() for p in model.parameters())


def test_glnet_attention_is_all_sdpa_calls(counted):
    """GLNet-4G at 224: fused attention is the slot MHSA of the GLMix blocks and the MHSA
    blocks (the slot assignment, 3 * S * L * C MACs per GLMix block, is plain matrix products);
    written out from the architecture."""
    _, result = counted('glnet-4g')
    slots, expected = 64, 0
    stages = [(4, 56, 64, 'glmix'), (4, 28, 128, 'glmix'), (18, 14, 256, 'glmix+mhsa'),
              (4, 7, 512, 'mhsa')]
    for depth, side, channels, mixer in stages:
        pixels = side * side
        for j in range(depth):
            if mixer == 'mhsa' or (mixer == 'glmix+mhsa' and j % 2):
                expected += pixels * pixels * 2 * channels  # heads * L * L * 2 * head_dim
            else:
                expected += slots * slots * 2 * channels
    assert result.attention_flops == expected


class Attention(nn.Module):

    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused

    def forward(self, q, k, v):
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        attn = (q @ k.transpose(-2, -1) * q.shape[-1]**-0.5).softmax(-1)
        return attn @ v


def count(module, *inputs):
    return get_flops.make_flop_analyzer(module, inputs).total()


def test_sdpa_handle_counts_like_explicit_matmuls():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    fused, explicit = count(Attention(True), q, k, v), count(Attention(False), q, k, v)
    assert fused == explicit == 2 * 3 * 5 * 7 * (8 + 4)


def test_sdpa_handle_broadcasts_batch_dims():
    q, k, v = torch.randn(2, 1, 5, 8), torch.randn(1, 3, 7, 8), torch.randn(1, 3, 7, 8)
    assert count(Attention(True), q, k, v) == 2 * 3 * 5 * 7 * (8 + 8)


def test_detector_config_counts_and_reports_rois(single_thread):
    result = get_flops.config_complexity(
        osp.join(ROOT, 'configs/maskrcnn_glnet_4g_coco.py'), (128, 128),
        cfg_options={'model.test_cfg.rpn.max_per_img': 20}, depth=0)
    assert result.flops > 0 and result.input_shape == (1, 3, 128, 128)
    assert 'roi_head.bbox_roi_extractor received 20 RoIs' in result.notes
    assert result.by_module['roi_head'] > 0 and result.by_module['neck'] > 0
    # The backbone inside the detector costs what the same arch costs alone.
    alone = get_flops.arch_complexity('glnet-4g', (128, 128))
    assert result.by_module['backbone'] == alone.flops


def test_cli_prints_report(capsys):
    assert get_flops.main(['--arch', 'glnet-stl', '--shape', '64', '96', '--depth', '1']) == 0
    out = capsys.readouterr().out
    assert 'glnet-stl' in out and '1x3x64x96' in out and 'not counted' in out
    assert 'stages' in out  # the per-module breakdown


def test_unknown_arch_lists_choices(capsys):
    with pytest.raises(ValueError, match='glnet-4g.*conformer-s32'):
        get_flops.build_arch('glnet-5g')
    assert get_flops.main(['--arch', 'resnet50']) == 2
    err = capsys.readouterr().err
    assert "Unknown arch 'resnet50'" in err and all(name in err for name in ARCHS)


@pytest.mark.parametrize('argv, message', [
    (['no/such/config.py'], 'not found'),
    (['--arch', 'glnet-4g', '--shape', '1', '2', '3'], 'one or two positive integers'),
    (['--arch', 'glnet-4g', '--shape', '0'], 'one or two positive integers'),
    (['--arch', 'glnet-4g', '--batch', '0'], '--batch must be a positive integer'),
])
def test_bad_input_is_named(capsys, argv, message):
    assert get_flops.main(argv) == 2
    assert message in capsys.readouterr().err


def test_model_rejecting_the_shape_is_reported(capsys):
    assert get_flops.main(['--arch', 'conformer-s32', '--shape', '40']) == 2
    assert 'Pad the images' in capsys.readouterr().err


@pytest.mark.parametrize('argv', [[], ['--arch', 'glnet-4g', '--all-archs'],
                                  ['--arch', 'glnet-4g', '--backbone-only']])
def test_conflicting_arguments_exit(argv):
    with pytest.raises(SystemExit):
        get_flops.parse_args(argv)
