"""Every stack computes the same numbers: each backbone, with weights and an input made from an
integer hash (no random generator, whose streams may change between torch versions), gives the
outputs recorded in ``reference_outputs.json``, within float32 rounding. The file was written
on the main stack (Python 3.11, torch 2.12.1); the oldest stack (Python 3.8, torch 2.1.2) runs
the same test against it, so the two agree with each other. Rewrite it only for an intended
change of the models' numbers: ``python tests/test_models/test_reference_outputs.py --record``
(``--compare`` prints how far the running stack is from the file)."""
import json
import math
import os.path as osp
import sys
from functools import lru_cache
from typing import Dict, List

import pytest
import torch
import torch.nn as nn

from glmix_mm.models import GLNet
from glmix_mm.models.conformer import Conformer

REFERENCE = osp.join(osp.dirname(osp.abspath(__file__)), 'reference_outputs.json')
SIZE = 128
MODELS = {
    'glnet-stl': lambda: GLNet('stl'),
    'glnet-stl-paramslot': lambda: GLNet('stl-paramslot'),
    'glnet-4g': lambda: GLNet('4g'),
    'glnet-4g-win7': lambda: GLNet('4g', mhsa_window=7),
    'glnet-16g': lambda: GLNet('16g'),
    'conformer-tiny': lambda: Conformer(arch='tiny'),
    'conformer-small': lambda: Conformer(arch='small'),
}
PROBES = 16  # values recorded per output, evenly spaced in its flattened order


TABLE_SIZE = 1_000_003  # a prime: tensors longer than the table do not repeat it row by row


@lru_cache()
def table() -> torch.Tensor:
    """Values in [-1, 1) from an integer hash of their position (a multiplicative hash, then two
    xor-shift-multiply rounds, all in 32 bits): exact integer arithmetic, the same on every
    version and machine, with no structure a network could pick up."""
    x = (torch.arange(TABLE_SIZE, dtype=torch.int64) * 2654435761) % 2**32
    for _ in range(2):
        x = ((x ^ (x >> 16)) * 0x45d9f3b) % 2**32
    x = x ^ (x >> 16)
    return (x.double() / 2**31 - 1).float()


def uniform(n: int, offset: int) -> torch.Tensor:
    """``n`` values of the table from position ``offset`` on (wrapping around)."""
    return table()[torch.arange(offset, offset + n) % TABLE_SIZE]


def set_hashed_weights(model: nn.Module) -> None:
    """Weights of unit-variance-preserving scale (uniform over +-sqrt(3 / fan-in)), biases and BN
    means small, BN variances in [1, 1.5]."""
    offset = 0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = uniform(tensor.numel(), offset)
            offset += tensor.numel()
            if name.endswith('running_var'):
                values = 1.25 + 0.25 * values
            elif tensor.dim() > 1:
                values = values * math.sqrt(3 / tensor[0].numel())
            else:
                values = 0.1 * values
            tensor.copy_(values.reshape(tensor.shape))


def outputs(name: str) -> List[torch.Tensor]:
    model = MODELS[name]()
    set_hashed_weights(model)
    x = uniform(3 * SIZE * SIZE, offset=TABLE_SIZE // 2).reshape(1, 3, SIZE, SIZE).float()
    with torch.no_grad():
        return [out.float() for out in model.eval()(x)]


def summary(out: torch.Tensor) -> Dict[str, object]:
    flat = out.reshape(-1).double()
    index = torch.linspace(0, flat.numel() - 1, PROBES).long()
    return dict(shape=list(out.shape), sum=flat.sum().item(), norm=flat.norm().item(),
                probes=flat[index].tolist())


def recorded() -> dict:
    with open(REFERENCE, encoding='utf-8') as f:
        return json.load(f)


@pytest.mark.parametrize('name', list(MODELS))
def test_outputs_equal_the_recorded_ones(name):
    expected = recorded()['models'][name]
    got = [summary(out) for out in outputs(name)]
    assert [g['shape'] for g in got] == [e['shape'] for e in expected]
    for i, (g, e) in enumerate(zip(got, expected)):
        # float32 rounding of a deep network, scaled by the output's size: one root-mean-square
        # value times 1e-4 per probe, relative 1e-4 for the norm and sum.
        rms = e['norm'] / math.sqrt(math.prod(e['shape']))
        assert g['norm'] == pytest.approx(e['norm'], rel=1e-4), f'output {i}'
        assert g['sum'] == pytest.approx(e['sum'], abs=1e-4 * rms * math.prod(e['shape'])), \
            f'output {i}'
        assert g['probes'] == pytest.approx(e['probes'], abs=1e-4 * rms), f'output {i}'


def test_the_recorded_outputs_are_not_trivial():
    """The closed-form weights give outputs that vary: a model that returned zeros, or the
    same value everywhere, would not match by accident."""
    for name, outs in recorded()['models'].items():
        for out in outs:
            assert out['norm'] > 0 and len(set(round(p, 6) for p in out['probes'])) >= 4, name


def record() -> None:
    data = dict(written_with=f'torch {torch.__version__}, Python {sys.version.split()[0]}',
                size=SIZE, models={name: [summary(out) for out in outputs(name)]
                                   for name in MODELS})
    with open(REFERENCE, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=1)
        f.write('\n')


def compare() -> None:
    """Print how far this stack's outputs are from the recorded ones."""
    worst_probe = worst_norm = 0.
    for name in MODELS:
        for got, expected in zip(map(summary, outputs(name)), recorded()['models'][name]):
            rms = expected['norm'] / math.sqrt(math.prod(expected['shape']))
            worst_probe = max(worst_probe, *(abs(a - b) / rms for a, b in
                                             zip(got['probes'], expected['probes'])))
            worst_norm = max(worst_norm, abs(got['norm'] / expected['norm'] - 1))
    print(f'torch {torch.__version__}, Python {sys.version.split()[0]} against '
          f"{recorded()['written_with']}: largest probe difference {worst_probe:.1e} of the "
          f"output's root-mean-square value, largest relative norm difference {worst_norm:.1e}")


if __name__ == '__main__':
    if sys.argv[1:] == ['--record']:
        record()
    elif sys.argv[1:] == ['--compare']:
        compare()
    else:
        sys.exit('usage: python tests/test_models/test_reference_outputs.py --record | --compare')
