"""glmix_mm/analysis/inputs.py and zoo.py: one shape parser for every tool, the model table
derived from the backbones' arch_zoo, and names refused with the valid ones."""
import pytest
import torch

from glmix_mm.analysis import flops, inputs, zoo
from glmix_mm.models import Conformer, GLNet


@pytest.mark.parametrize('text, lengths, expected', [
    ('2x3x200x328', (4, ), (2, 3, 200, 328)),
    ('1X3x64x64', (4, ), (1, 3, 64, 64)),
    ('224', (1, 2), (224, )),
    ('40x56', (1, 2), (40, 56)),
])
def test_parse_shape(text, lengths, expected):
    assert inputs.parse_shape(text, lengths) == expected


@pytest.mark.parametrize('bad', ['3x224x224', '1x3x0x224', '1x3xax224', '', '1x3x-2x4'])
def test_parse_shape_names_the_form(bad):
    with pytest.raises(ValueError, match=f'Bad shape {bad!r}: expected NxCxHxW'):
        inputs.parse_shape(bad)


def test_parse_shape_of_other_lengths():
    with pytest.raises(ValueError, match='1 or 2 positive integers'):
        inputs.parse_shape('1x2x3', lengths=(1, 2))


def test_kwargs_and_values():
    assert inputs.split_top_level('a=(1,2),b=[3, 4],c=x') == ['a=(1,2)', 'b=[3, 4]', 'c=x']
    assert inputs.parse_kwargs(['mhsa_window=14', 'out_indices=(3,)', 'mode=fast']) == dict(
        mhsa_window=14, out_indices=(3, ), mode='fast')
    with pytest.raises(ValueError, match="Bad argument 'x': expected key=value"):
        inputs.parse_kwargs(['x'])


def test_make_input_is_reproducible():
    a, b = inputs.make_input((2, 3, 8, 8), 'cpu', 5), inputs.make_input((2, 3, 8, 8), 'cpu', 5)
    assert torch.equal(a, b) and not torch.equal(a, inputs.make_input((2, 3, 8, 8), 'cpu', 6))
    assert torch.equal(flops.image_batch(2, (8, 8), 5), a)  # one input for both tools


def test_table_follows_the_arch_zoos():
    assert [n for n in zoo.BACKBONES if n.startswith('glnet-')] == [
        f'glnet-{arch}' for arch in GLNet.arch_zoo]
    assert {kw['arch'] for kw in zoo.CONFORMER_ARCHS.values()} <= set(Conformer.arch_zoo)
    assert zoo.UPSTREAM_GLNETS == [f'upstream-glnet-{arch}' for arch in GLNet.arch_zoo]
    assert zoo.OUR_ARCHS == [n for n in zoo.BACKBONES if n.startswith(('glnet-', 'conformer-'))]
    assert zoo.BACKBONES['glnet-4g'].kwargs == dict(arch='4g', out_norm=None)
    # get_flops counts GLNet with its output norms, as the configs build it; the benchmarks
    # build it without.
    assert not isinstance(flops.build_arch('glnet-stl').norm0, torch.nn.Identity)
    assert isinstance(zoo.build_backbone(zoo.parse_model('glnet-stl')).norm0, torch.nn.Identity)


def test_parse_model_and_its_errors(tmp_path):
    spec = zoo.parse_model('glnet-4g:mhsa_window=14,out_indices=(2,3)')
    assert (spec.name, spec.kwargs, spec.glnet_arch) == (
        'glnet-4g', dict(mhsa_window=14, out_indices=(2, 3)), '4g')
    assert zoo.parse_model('upstream-glnet-9g', glmix_repo='x').glnet_arch == '9g'
    with pytest.raises(ValueError, match="Unknown model 'glnet-5g'. Choose from glnet-stl"):
        zoo.parse_model('glnet-5g')
    with pytest.raises(ValueError, match='--glmix-repo'):
        zoo.parse_model('upstream-glnet-4g')
    with pytest.raises(ValueError, match="Config file 'nowhere.py' not found"):
        zoo.parse_model('nowhere.py')
    with pytest.raises(ValueError, match='GLNet has no argument no_such_arg'):
        zoo.backbone_class_and_kwargs(zoo.parse_model('glnet-stl:no_such_arg=1'))
