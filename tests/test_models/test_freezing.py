import torch.nn as nn

from glmix_mm.models.freezing import batch_norms_to_eval, freeze


def test_freeze_sets_eval_and_stops_gradients_of_given_modules_only():
    frozen, free = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), nn.Linear(4, 2)
    nn.Sequential(frozen, free).train()
    freeze([frozen])
    assert not frozen.training and not any(m.training for m in frozen.modules())
    assert not any(p.requires_grad for p in frozen.parameters())
    assert free.training and all(p.requires_grad for p in free.parameters())


def test_batch_norms_to_eval_leaves_other_layers_training():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.SyncBatchNorm(4),
                          nn.LayerNorm(4)).train()
    batch_norms_to_eval(model)
    assert [m.training for m in model] == [True, False, False, True]
    assert all(p.requires_grad for p in model.parameters())  # statistics frozen, not weights
