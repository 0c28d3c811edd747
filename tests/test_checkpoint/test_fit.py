"""glmix_mm/checkpoint/fit.py, check_fit: a checkpoint that does not fit is refused with the key
report, except for the class-dependent head layers when fine-tuning from ``load_from`` (the hook
that applies it in a Runner: tests/test_engine/test_checkpoint_fit_hook.py)."""
import pytest
import torch

from glmix_mm.checkpoint import CheckpointMismatchError, check_fit

from fakes import ToyModel


def test_exact_mode_reports_every_kind_of_mismatch():
    model = ToyModel()
    assert check_fit(model, ToyModel().state_dict()) == []
    state = ToyModel(width=5).state_dict()  # other backbone width: backbone and neck shapes
    state['extra.weight'] = torch.zeros(1)
    del state['head.bias']
    with pytest.raises(CheckpointMismatchError) as error:
        check_fit(model, state, source='x.pth', hint='Pick the right file.')
    lines = str(error.value).splitlines()
    assert lines[0] == 'x.pth does not fit the model:'
    assert 'head.bias' in lines[1] and 'missing' in lines[1]
    assert 'extra.weight' in lines[2] and 'unexpected' in lines[2]
    assert 'backbone.weight (5, 3) vs (4, 3)' in lines[3] and lines[-1] == '  Pick the right file.'
    # Deliberate partial loading: a warning, and the shape mismatches are left out.
    assert sorted(check_fit(model, state, allow_partial=True)) == [
        'backbone.bias', 'backbone.weight', 'neck.weight']


def test_missing_batch_norm_counters_fit_and_load_as_zero():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    state = {k: v for k, v in model.state_dict().items() if 'num_batches_tracked' not in k}
    assert check_fit(model, state) == []
    model[1].num_batches_tracked.fill_(7)
    assert model.load_state_dict(state, strict=True) is not None  # torch accepts it too
    assert model[1].num_batches_tracked.item() in (0, 7)
    del state['1.running_mean']
    with pytest.raises(CheckpointMismatchError, match='1.running_mean'):
        check_fit(model, state)


def test_finetune_skips_only_class_dependent_head_layers():
    model = ToyModel(num_classes=2)
    other_classes = ToyModel(num_classes=5).state_dict()
    assert sorted(check_fit(model, other_classes, 'finetune')) == ['head.bias', 'head.weight']
    with pytest.raises(CheckpointMismatchError, match='backbone'):  # another backbone
        check_fit(model, ToyModel(width=5).state_dict(), 'finetune')
    head_missing = {k: v for k, v in model.state_dict().items() if not k.startswith('head.')}
    assert check_fit(model, head_missing, 'finetune') == []  # warned, not refused
    backbone_only = {k: v for k, v in model.state_dict().items() if k.startswith('backbone.')}
    with pytest.raises(CheckpointMismatchError, match='init_cfg'):
        check_fit(model, backbone_only, 'finetune')
    bare = {k[len('backbone.'):]: v for k, v in backbone_only.items()}
    with pytest.raises(CheckpointMismatchError, match='bare backbone'):
        check_fit(model, bare, 'finetune')
