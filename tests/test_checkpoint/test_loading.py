"""Loading checkpoints never runs code from a file (glmix_mm.checkpoint: unpickling, io).

Malicious files through every loader, upstream training checkpoints (a faithful fake of the
hydra / OmegaConf ``args`` of the GLNet releases, argparse ``args`` of the Conformer ones),
MMEngine training state, the trust opt-in, safetensors, and bad files.
"""
import argparse
import builtins
import os
import os.path as osp
import pathlib
import pickle
import sys
import types
import typing
from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

import glmix_mm
from glmix_mm.models import GLNet
from glmix_mm.checkpoint import extract_state_dict, load_local_checkpoint, save_checkpoint
from glmix_mm.checkpoint.unpickling import (TRUSTED_ENV, CheckpointLoadError, InertObject,
                                            UnsafeCheckpointError, foreign_globals,
                                            trust_checkpoint)

from fakes import build as build_conformer
from fakes import features, load_into, random_upstream_checkpoint, to_upstream
from helpers import run_tool

# The globals of a real hydra training checkpoint's ``args`` (omegaconf 2.4.0, DictConfig with
# nested groups and lists, saved by torch.save), as torch.serialization lists them.
OMEGACONF_GLOBALS = [
    'builtins.dict', 'builtins.int', 'builtins.list', 'collections.defaultdict',
    'omegaconf.base.ContainerMetadata', 'omegaconf.base.Metadata',
    'omegaconf.dictconfig.DictConfig', 'omegaconf.listconfig.ListConfig',
    'omegaconf.nodes.AnyNode', 'typing.Any'
]


# ------------------------------------------------------------------------------------------------
# Malicious payloads: each creates the file ``marker`` when unpickled by plain pickle.
# ------------------------------------------------------------------------------------------------
class RunsShell:
    """``os.system('touch marker')``: a module torch's reader blocks, so the file is refused."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class RunsPython(RunsShell):
    """``exec(code)``: read as an inert record of ``builtins.exec``."""

    def __reduce__(self):
        return builtins.exec, (f'open({self.marker!r}, "w").close()', )


class CallsMethod(RunsShell):
    """``pathlib.Path.touch(Path(marker))``, pickled as ``getattr(Path, 'touch')``: inert."""

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker), )


PAYLOADS = [RunsShell, RunsPython, CallsMethod]


@pytest.fixture
def marker(tmp_path):
    return tmp_path / 'payload_ran'


def refused_or_inert(payload, marker, load):
    """Run ``load``; a shell payload must be refused, the others read as inert data."""
    if payload is RunsShell:
        with pytest.raises(UnsafeCheckpointError) as info:
            load()
        message = str(info.value)
        assert 'system' in message and TRUSTED_ENV in message and '\n' not in message
        result = None
    else:
        result = load()
    assert not marker.exists(), 'the payload ran'
    return result


@pytest.mark.parametrize('payload', PAYLOADS)
def test_payload_runs_when_trusted_so_the_other_tests_mean_something(payload, marker, tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': payload(marker)}, path)
    with trust_checkpoint(str(path)):
        load_local_checkpoint(str(path))
    assert marker.exists()


@pytest.mark.parametrize('payload', PAYLOADS)
def test_malicious_file_through_the_loaders(payload, marker, tmp_path):
    path = str(tmp_path / 'evil.pth')
    linear = nn.Linear(2, 2)
    torch.save({'state_dict': linear.state_dict(), 'x': payload(marker)}, path)
    result = refused_or_inert(payload, marker, lambda: load_local_checkpoint(path))
    if result is not None:
        assert isinstance(result['x'], InertObject)
        assert torch.equal(result['state_dict']['weight'], linear.weight)
    refused_or_inert(payload, marker, lambda: CheckpointLoader.load_checkpoint(path))
    refused_or_inert(payload, marker, lambda: load_checkpoint(nn.Linear(2, 2), path))
    # The payload as the whole file: refused either way (an inert record is no checkpoint).
    torch.save(payload(marker), path)
    with pytest.raises(CheckpointLoadError, match=r'evil\.pth'):
        load_local_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize('payload', PAYLOADS)
def test_malicious_file_through_glnet_init_cfg(payload, marker, tmp_path):
    path = tmp_path / 'glnet_evil.pth'
    checkpoint = random_upstream_checkpoint('stl')
    checkpoint['args'] = payload(marker)
    torch.save(checkpoint, path)
    model = GLNet('stl', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    refused_or_inert(payload, marker, model.init_weights)
    if payload is not RunsShell:  # the weights next to the payload did load
        own = model.state_dict()
        assert all(torch.equal(own[k], v) for k, v in checkpoint['model'].items() if k in own)


@pytest.mark.parametrize('payload', PAYLOADS)
def test_malicious_file_through_mmdet_init_detector_for_resnet(payload, marker, tmp_path):
    """mmdet's own RetinaNet-ResNet config: glmix_mm's loader serves every model once imported."""
    pytest.importorskip('mmdet')
    from mmdet.apis import init_detector
    from mmengine.config import Config
    import mmdet
    config = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'retinanet',
                      'retinanet_r18_fpn_1x_coco.py')
    path = str(tmp_path / 'retinanet_evil.pth')
    torch.save({'state_dict': {}, 'meta': {}, 'x': payload(marker)}, path)
    refused_or_inert(payload, marker,
                     lambda: init_detector(Config.fromfile(config), path, device='cpu'))


@pytest.mark.parametrize('payload', PAYLOADS)
def test_malicious_download_through_mmengine_url_schemes(payload, marker, tmp_path, monkeypatch):
    """``https://`` and the named schemes (``torchvision://``) load downloads safely too."""
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': payload(marker)}, evil)
    downloads = []

    def download(url, dst, hash_prefix=None, progress=True):  # no network in tests
        downloads.append(url)
        pathlib.Path(dst).write_bytes(evil.read_bytes())

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    for url in ('https://example.com/evil.pth', 'torchvision://resnet18'):
        refused_or_inert(payload, marker, lambda: CheckpointLoader.load_checkpoint(url))
    assert downloads[0] == 'https://example.com/evil.pth'
    assert downloads[1].startswith('https://download.pytorch.org/models/resnet18')


# ------------------------------------------------------------------------------------------------
# Upstream training checkpoints
# ------------------------------------------------------------------------------------------------
@contextmanager
def classes_of_uninstalled_modules(names):
    """Classes named like those of packages that are not installed, only inside the block.

    Args:
        names (list[str]): ``module.Class`` names.

    Yields:
        dict: Class name to class; pickle finds them by name while the block runs.
    """
    added, classes = [], {}
    try:
        for full_name in names:
            module, name = full_name.rsplit('.', 1)
            parts = module.split('.')
            for i in range(1, len(parts) + 1):
                prefix = '.'.join(parts[:i])
                if prefix not in sys.modules:
                    sys.modules[prefix] = types.ModuleType(prefix)
                    added.append(prefix)
            cls = type(name, (), dict(__module__=module, __qualname__=name))
            setattr(sys.modules[module], name, cls)
            classes[name] = cls
        yield classes
    finally:
        for prefix in added:
            del sys.modules[prefix]


def make(cls, **state):
    obj = cls()
    obj.__dict__.update(state)
    return obj


def hydra_args(c: dict, values: dict, key=None, parent=None):
    """An OmegaConf ``DictConfig`` as omegaconf pickles it (the state of its ``__getstate__``)."""

    def metadata(cls, key, **extra):
        return make(cls, ref_type=typing.Any, optional=True, key=key, flags={},
                    flags_root=False, resolver_cache=defaultdict(dict), **extra)

    def container(kind, key, parent, content, key_type):
        node = make(c[kind], _parent=parent, _content=None,
                    _metadata=metadata(c['ContainerMetadata'], key,
                                       object_type=dict if kind == 'DictConfig' else list,
                                       key_type=key_type, element_type=typing.Any))
        node._content = content(node)
        return node

    def child(key, value, parent):
        if isinstance(value, dict):
            return hydra_args(c, value, key, parent)
        if isinstance(value, list):
            return container('ListConfig', key, parent,
                             lambda n: [child(i, v, n) for i, v in enumerate(value)], int)
        return make(c['AnyNode'], _parent=parent, _val=value,
                    _metadata=metadata(c['Metadata'], key, object_type=None))

    cfg = container('DictConfig', key, parent,
                    lambda n: {k: child(k, v, n) for k, v in values.items()}, typing.Any)
    if parent is None:
        cfg._metadata.flags = {'struct': False}  # the GLMix scripts' OmegaConf.set_struct(False)
    return cfg


def fake_glnet_release(path, seed=0):
    """The layout of the released GLNet files: model, model_ema, optimizer, epoch, scaler, args."""
    checkpoint = random_upstream_checkpoint('stl', seed)
    ema = random_upstream_checkpoint('stl', seed + 1)['model']
    params = [nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(2, 2))]
    optimizer = torch.optim.AdamW(params)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    args = dict(model='glnet_stl', lr=1e-3, betas=[0.9, 0.999], epochs=300, output_dir='out',
                slurm=dict(job_dir=None, ngpus=8), token_label=True, _max_accuracy=80.1)
    with classes_of_uninstalled_modules(OMEGACONF_GLOBALS[4:9]) as classes:
        torch.save(dict(model=checkpoint['model'], model_ema=ema,
                        optimizer=optimizer.state_dict(), epoch=299,
                        scaler={'scale': 65536.0, 'growth_factor': 2.0, 'backoff_factor': 0.5,
                                'growth_interval': 2000, '_growth_tracker': 0},
                        args=hydra_args(classes, args)), path)
    return checkpoint['model']


def test_fake_glnet_release_loads_into_glnet_without_omegaconf(tmp_path):
    path = str(tmp_path / 'glnet_stl_release.pth')
    weights = fake_glnet_release(path)
    assert foreign_globals(path) == OMEGACONF_GLOBALS  # as faithful as that
    omegaconf_was_imported = 'omegaconf' in sys.modules
    checkpoint = load_local_checkpoint(path)
    assert ('omegaconf' in sys.modules) == omegaconf_was_imported  # nothing was imported
    args = checkpoint['args']
    assert type(args).global_name == 'omegaconf.dictconfig.DictConfig'
    assert args.state['_content']['lr'].state['_val'] == 1e-3
    assert args.state['_content']['slurm'].state['_parent'] is args  # cycles kept
    assert checkpoint['epoch'] == 299 and checkpoint['scaler']['scale'] == 65536.0
    assert set(checkpoint['optimizer']) == {'state', 'param_groups'}

    model = GLNet('stl', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    for key, value in model.state_dict().items():  # 'model', the published key for this arch
        if key in weights:
            assert torch.equal(value, weights[key]), key
    assert run_tool('model_converters/glnet2mm.py', path, tmp_path / 'converted.pth') == 0


def test_conformer_release_with_argparse_args_loads(tmp_path):
    reference = build_conformer()
    upstream = to_upstream(reference.state_dict(), 'tiny')
    params = [nn.Parameter(torch.randn(3))]
    path = tmp_path / 'conformer_release.pth'
    torch.save(dict(model=upstream, model_ema={k: v + 1 for k, v in upstream.items()},
                    optimizer=torch.optim.AdamW(params).state_dict(),
                    lr_scheduler={'base_values': [5e-4], 'decay_rate': 0.1}, epoch=299,
                    args=argparse.Namespace(model='Conformer_tiny_patch16', lr=5e-4,
                                            output_dir=pathlib.Path('out'))), path)
    # (the releases name pathlib.PosixPath; Python 3.13 pickles it as pathlib._local.PosixPath)
    assert foreign_globals(str(path)) == ['argparse.Namespace',
                                          f'{pathlib.PosixPath.__module__}.PosixPath']
    args = load_local_checkpoint(str(path))['args']
    assert isinstance(args, InertObject) and args.state['lr'] == 5e-4
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(features(load_into(path), x), features(reference, x)):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------------
# MMEngine training state
# ------------------------------------------------------------------------------------------------
def assert_same_tree(a, b, where='checkpoint'):
    assert type(a) is type(b), f'{where}: {type(a)} vs {type(b)}'
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same_tree(a[k], b[k], f'{where}[{k!r}]')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f'{where}[{i}]')
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, HistoryBuffer):
        assert_same_tree(vars(a), vars(b), f'{where}.__dict__')
    else:
        assert a == b, where


@pytest.fixture(scope='module')
def mmengine_checkpoint(tmp_path_factory):
    """A checkpoint saved by an MMEngine runner: message hub, schedulers, RNGStateHook."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    from glmix_mm.engine import RNGStateHook

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, targets=None, mode='tensor'):
            loss = (self.linear(torch.stack(inputs)) - torch.stack(targets)).pow(2).mean()
            return {'loss': loss}

    data = [dict(inputs=torch.randn(2), targets=torch.randn(1)) for _ in range(4)]
    work_dir = str(tmp_path_factory.mktemp('runner'))
    runner = Runner(
        model=Toy(), work_dir=work_dir,
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], by_epoch=True),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=[RNGStateHook()], randomness=dict(seed=0))
    runner.train()
    return osp.join(work_dir, 'epoch_2.pth')


def test_mmengine_checkpoint_needs_no_stand_in_and_loads_equal(mmengine_checkpoint):
    assert foreign_globals(mmengine_checkpoint) == []
    ours = load_local_checkpoint(mmengine_checkpoint)
    full = torch.load(mmengine_checkpoint, weights_only=False)
    assert {'message_hub', 'param_schedulers', 'rng_state', 'optimizer'} <= set(ours)
    assert isinstance(ours['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert isinstance(ours['rng_state']['numpy'][1], np.ndarray)
    assert_same_tree(ours, full)


def test_loading_leaves_torch_as_it_was(mmengine_checkpoint):
    has_allowlist = hasattr(torch.serialization, 'get_safe_globals')  # torch >= 2.5
    before = set(torch.serialization.get_safe_globals()) if has_allowlist else None
    load_local_checkpoint(mmengine_checkpoint)
    if has_allowlist:
        assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(pickle.UnpicklingError):  # plain torch.load is as strict as before
        torch.load(mmengine_checkpoint, weights_only=True)


# ------------------------------------------------------------------------------------------------
# Trust
# ------------------------------------------------------------------------------------------------
def namespace_file(path):
    torch.save({'args': argparse.Namespace(lr=0.1)}, path)
    return str(path)


def loads_real_objects(path):
    return type(load_local_checkpoint(path)['args']) is argparse.Namespace


def test_trust_opt_in_is_per_file(tmp_path, monkeypatch):
    trusted, other = namespace_file(tmp_path / 'a.pth'), namespace_file(tmp_path / 'b.pth')
    assert not loads_real_objects(trusted)
    with trust_checkpoint(trusted):
        assert loads_real_objects(trusted) and not loads_real_objects(other)
    assert not loads_real_objects(trusted)

    link = tmp_path / 'link.pth'
    link.symlink_to(trusted)
    monkeypatch.setenv(TRUSTED_ENV, os.pathsep.join([str(tmp_path / 'missing.pth'), trusted]))
    assert loads_real_objects(trusted) and loads_real_objects(str(link))
    assert not loads_real_objects(other)
    monkeypatch.setenv(TRUSTED_ENV, str(tmp_path))  # a directory trusts nothing
    assert not loads_real_objects(trusted)
    with pytest.raises(ValueError, match='directory'):
        trust_checkpoint(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        trust_checkpoint(str(tmp_path / 'missing.pth'))
    assert glmix_mm.trust_checkpoint is trust_checkpoint


def test_unreadable_without_code_names_the_global_and_the_opt_in(tmp_path):
    path = str(tmp_path / 'counts.pth')
    counts = defaultdict(int, a=1)  # needs dict-subclass items: no inert record can take them
    torch.save({'counts': counts}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_local_checkpoint(path)
    message = str(info.value)
    assert path in message and 'collections.defaultdict' in message
    assert TRUSTED_ENV in message and 'trust_checkpoint' in message and '\n' not in message
    with trust_checkpoint(path):
        assert load_local_checkpoint(path)['counts'] == counts


# ------------------------------------------------------------------------------------------------
# safetensors
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def upstream_stl(tmp_path_factory):
    path = tmp_path_factory.mktemp('upstream') / 'glnet_stl.pth'
    torch.save(random_upstream_checkpoint('stl'), path)
    return str(path)


def glnet_outputs(checkpoint, x):
    model = GLNet('stl', init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint)))
    model.init_weights()
    with torch.no_grad():
        return model.eval()(x)


def test_glnet2mm_writes_safetensors_that_load_everywhere(upstream_stl, tmp_path):
    pth, st = str(tmp_path / 'mm.pth'), str(tmp_path / 'mm.safetensors')
    tool = 'model_converters/glnet2mm.py'
    assert run_tool(tool, upstream_stl, pth) == 0 and run_tool(tool, upstream_stl, st) == 0
    with open(st, 'rb') as f:
        assert b'{' in f.read(16)  # a safetensors header, not a pickle
    expected, loaded = torch.load(pth, weights_only=True), load_local_checkpoint(st)
    assert loaded['meta'] == expected['meta'] == {'arch': 'stl', 'format': 'backbone'}
    assert loaded['state_dict'].keys() == expected['state_dict'].keys()  # (sorted by name)
    assert extract_state_dict(loaded).keys() == expected['state_dict'].keys()
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(glnet_outputs(pth, x), glnet_outputs(st, x)):
        assert torch.equal(a, b)
    assert CheckpointLoader.load_checkpoint(st)['meta']['arch'] == 'stl'


def test_conformer2mm_writes_safetensors(tmp_path):
    reference = build_conformer()
    src, dst = tmp_path / 'upstream.pth', tmp_path / 'conformer.safetensors'
    torch.save({'model': to_upstream(reference.state_dict(), 'tiny')}, src)
    assert run_tool('model_converters/conformer2mm.py', src, dst) == 0
    assert load_local_checkpoint(str(dst))['meta']['patch_size'] == 16
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(features(load_into(dst), x), features(reference, x)):
        assert torch.equal(a, b)


def test_foreign_safetensors_loads_through_mmengine(upstream_stl, tmp_path):
    from safetensors.torch import save_file
    weights = torch.load(upstream_stl, weights_only=True)['model']
    path = tmp_path / 'model.safetensors'
    save_file(weights, str(path))  # a plain state dict, no metadata (as on model hubs)
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(glnet_outputs(path, x), glnet_outputs(upstream_stl, x)):
        assert torch.equal(a, b)
    linear, target = nn.Linear(3, 2), nn.Linear(3, 2)
    shared = {'weight': linear.weight.data, 'bias': linear.bias.data, 'alias': linear.bias.data}
    save_checkpoint({'state_dict': shared, 'meta': {}}, str(tmp_path / 'linear.safetensors'))
    load_checkpoint(target, str(tmp_path / 'linear.safetensors'), strict=False)
    assert torch.equal(target.weight, linear.weight)


# ------------------------------------------------------------------------------------------------
# Bad files: one line naming the file and the problem
# ------------------------------------------------------------------------------------------------
def _bytes(data):
    return lambda path: path.write_bytes(data)


def _truncated(fraction, **save_args):

    def write(path):
        torch.save({'w': torch.randn(64, 64)}, path, **save_args)
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * fraction)])

    return write


BAD_FILES = {
    'empty': (_bytes(b''), 'empty'),
    'text': (_bytes(b'model weights are here\n'), 'text file'),
    'html': (_bytes(b'<!DOCTYPE html><html>404</html>'), 'text file'),
    'truncated': (_truncated(0.5), 'truncated'),
    'truncated_head': (_truncated(0.05), 'truncated'),
    'truncated_legacy': (_truncated(0.5, _use_new_zipfile_serialization=False), 'truncated'),
    'list': (lambda path: torch.save([1, 2], path), 'holds a list'),
    'tensor': (lambda path: torch.save(torch.ones(2), path), 'holds a Tensor'),
    'module': (lambda path: torch.save(nn.Linear(2, 2), path), 'pickled torch.nn'),
    'plain_pickle': (lambda path: path.write_bytes(pickle.dumps({'w': 1}, 2)), 'plain pickle'),
    'torchscript': (lambda path: torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path)),
                    'TorchScript'),
    'truncated_safetensors': (lambda path: path.write_bytes(b'\x40' + b'\0' * 7 + b'{"w'),
                              'truncated'),
    'directory': (lambda path: path.mkdir(), 'directory'),
}


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_bad_file_gets_one_line_naming_it(case, tmp_path):
    write, expected = BAD_FILES[case]
    path = tmp_path / (f'{case}.safetensors' if 'safetensors' in case else f'{case}.pth')
    write(path)
    with pytest.raises(CheckpointLoadError) as info:
        load_local_checkpoint(str(path))
    message = str(info.value)
    assert str(path) in message and expected in message and '\n' not in message, message
    model = GLNet('stl', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointLoadError, match=expected):
        model.init_weights()


def test_legacy_format_loads_with_stand_ins(tmp_path):
    path = str(tmp_path / 'legacy.pth')
    weights = {'w': torch.randn(3)}
    torch.save({'model': weights, 'args': argparse.Namespace(lr=1)}, path,
               _use_new_zipfile_serialization=False)
    checkpoint = load_local_checkpoint(path)
    assert torch.equal(checkpoint['model']['w'], weights['w'])
    assert type(checkpoint['args']).global_name == 'argparse.Namespace'


def test_missing_file_says_where_to_get_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoints/'):
        load_local_checkpoint(str(tmp_path / 'nope.pth'))
