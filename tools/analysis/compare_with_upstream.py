"""Check that our GLNet computes what the upstream ImageNet code computes.

Builds every upstream model (github.com/rayleizhu/GLMix, ``models/glnet.py`` and
``models/glnet_tklb.py``) with random weights and randomised BatchNorm statistics, saves it in
the released checkpoint layout, loads that file into our ``GLNet`` through
``init_cfg=dict(type='Pretrained')`` and compares all four stage outputs (``out_norm=None``).
Then converts the same file with ``glnet2mm.py --cls`` and compares the logits of the MMPretrain
classifier of ``configs/glnet_<arch>_in1k.py`` with the upstream model's.

With ``--conformer-repo``, does the same for our Conformer against the authors' MMDetection
backbone (pengzhiliang/Conformer, ``mmdetection/mmdet/models/backbones/Conformer.py``; its
mmdet 2.x registration and logging imports are replaced by stand-ins when it is loaded).

With ``--timm``, also compares the logits of the timm models of :mod:`glmix_mm.timm`
(``timm.create_model('glnet_<arch>', pretrained=True, pretrained_cfg_overlay=dict(file=...))``
on the same file) with the upstream models', and, with ``--conformer-repo``, those of the
``conformer_*`` models with the authors' classifiers (``conformer.py``: the sum of their two
heads' logits).

Needs clones of the upstream repos and their imports (``pip install timm fairscale``)::

    git clone https://github.com/rayleizhu/GLMix /tmp/GLMix
    git clone https://github.com/pengzhiliang/Conformer /tmp/Conformer
    python tools/analysis/compare_with_upstream.py --glmix-repo /tmp/GLMix \
        --conformer-repo /tmp/Conformer [--timm]
"""
import argparse
import importlib
import importlib.util
import os
import os.path as osp
import sys
import tempfile
import warnings
from typing import Callable, Optional

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from glmix_mm.models import Conformer, GLNet

from glmix_mm.analysis.upstream import import_upstream_glnet, upstream_glnet_factory
from glmix_mm.models.converters import glnet_to_mm
from glmix_mm.utils import tool_main

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFORMER_FILE = osp.join('mmdetection', 'mmdet', 'models', 'backbones', 'Conformer.py')
ARCHS = ('stl', 'stl-paramslot', '4g', '9g', '16g', '4g_tklb', '9g_tklb')
SIZES = ((2, 3, 224, 224), (1, 3, 256, 320), (1, 3, 192, 288))


def randomize_(model: torch.nn.Module) -> None:
    """Random weights of a sensible scale, random BN statistics, scales away from identity."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(('gamma', 'slot_scale')):
                p.uniform_(0.3, 1.0)
            elif p.dim() == 1:
                p.normal_(1.0 if 'norm' in name and name.endswith('weight') else 0., 0.1)
            else:
                p.normal_(0, p[0].numel()**-0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """``max|ours - theirs| / max|theirs|``."""
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def logits_error(label: str, ours: Callable, theirs: Callable) -> float:
    """The relative error of the logits of two classifiers on one random batch, printed."""
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        err = relative_error(ours(x), theirs(x))
    print(f'{label} logits (2, 1000): max relative error {err:.1e}', flush=True)
    return err


def stage_outputs(model: torch.nn.Module, x: torch.Tensor) -> list:
    outs = []
    hooks = [s.register_forward_hook(lambda m, i, o: outs.append(o)) for s in model.stages]
    model(x)
    for h in hooks:
        h.remove()
    return outs


def compare(repo: str, arch: str, tmp: str, with_timm: bool = False) -> float:
    torch.manual_seed(0)
    ref = upstream_glnet_factory(repo, arch)().eval()
    randomize_(ref)
    params = sum(p.numel() for n, p in ref.named_parameters() if 'tklb_aux_head' not in n)
    ckpt = {'model': ref.state_dict()}
    if arch == '16g':  # the release's published weights are the EMA ones
        ckpt = {'model': {k: v + 1 for k, v in ckpt['model'].items()},
                'model_ema': ckpt['model']}
    path = osp.join(tmp, f'{arch}.pth')
    torch.save(ckpt, path)
    ours = GLNet(arch, out_norm=None, init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    ours.eval()
    worst = 0.
    for shape in SIZES:
        x = torch.randn(*shape)
        with torch.no_grad():
            errs = [relative_error(a, b) for a, b in zip(ours(x), stage_outputs(ref, x))]
        worst = max(worst, *errs)
        print(f'{arch:14s} {str(tuple(shape)):17s} params {params / 1e6:6.2f}M  max relative '
              'error per stage: ' + ' '.join(f'{e:.1e}' for e in errs), flush=True)
    worst = max(worst, compare_classifier(ref, arch, ckpt))
    if with_timm:
        worst = max(worst, compare_timm(f'glnet_{arch.replace("-", "_")}', path, ref))
    os.remove(path)
    return worst


def compare_classifier(ref: torch.nn.Module, arch: str, ckpt: dict) -> float:
    """Logits of our MMPretrain classifier (converted weights) against the upstream model's."""
    name = 'stl' if arch == 'stl-paramslot' else arch
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'glnet_{name}_in1k.py'))
    cfg.model.backbone.arch = arch
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    classifier = MODELS.build(cfg.model).eval()
    classifier.load_state_dict(glnet_to_mm(ckpt, cls=True)['state_dict'])
    return logits_error(f'{arch:14s} classifier', lambda x: classifier(x, mode='tensor'), ref)


def compare_timm(name: str, path: str, theirs: Callable) -> float:
    """Logits of the timm model ``name`` with the release file ``path`` against ``theirs``."""
    import timm
    model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path))
    return logits_error(f'{name:23s} timm', model.eval(), theirs)


def import_timm_models(glmix_repo: Optional[str]) -> None:
    """Register glmix_mm.timm's models after upstream's modules, which register the same
    ``glnet_*`` names with timm, so that ``timm.create_model`` builds ours."""
    if glmix_repo:
        for tklb in (False, True):
            import_upstream_glnet(glmix_repo, tklb=tklb)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Overwriting glnet_')
        importlib.import_module('glmix_mm.timm')
    import timm
    module = timm.models.model_entrypoint('glnet_4g').__module__
    if module != 'glmix_mm.timm.glnet':
        raise ImportError(f'timm builds glnet_4g from {module}, not glmix_mm.timm; run the '
                          'comparison in a fresh process.')


# The authors' Conformer detection backbones: (arch, patch size) -> their constructor arguments.
CONFORMER_ARCHS = {
    ('tiny', 16): dict(channel_ratio=1, embed_dim=384, num_heads=6),
    ('small', 16): dict(channel_ratio=4, embed_dim=384, num_heads=6),
    ('small', 32): dict(channel_ratio=4, embed_dim=384, num_heads=6),
    ('base', 16): dict(channel_ratio=6, embed_dim=576, num_heads=9),
}
# mmdet 2.x / mmcv 1.x imports of the authors' file, only used to register the class and to load
# pretrained weights: replaced so that the file runs beside mmdet 3.x.
MMDET2_IMPORTS = {
    'from mmdet.utils import get_root_logger': 'get_root_logger = None',
    'from mmcv.runner import load_checkpoint': 'load_checkpoint = None',
    'from ..builder import BACKBONES': (
        'class BACKBONES:\n    register_module = staticmethod(lambda: (lambda cls: cls))'),
}


def upstream_conformer_class(repo: str) -> type:
    path = osp.join(repo, CONFORMER_FILE)
    with open(path) as f:
        source = f.read()
    for old, new in MMDET2_IMPORTS.items():
        source = source.replace(old, new)
    namespace: dict = {'__name__': 'upstream_conformer'}
    exec(compile(source, path, 'exec'), namespace)
    return namespace['Conformer']


def upstream_conformer_classifier(repo: str) -> type:
    """The authors' classification Conformer (``conformer.py`` of the repo)."""
    spec = importlib.util.spec_from_file_location('upstream_conformer_classifier',
                                                  osp.join(repo, 'conformer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Conformer


def compare_timm_conformer(cls: type, arch: str, patch_size: int, tmp: str) -> float:
    """Logits of glmix_mm.timm's ``conformer_<arch>_patch<size>`` against the authors'
    classifier's (the sum of its two heads' logits) on the same random weights."""
    torch.manual_seed(0)
    ref = cls(patch_size=patch_size, depth=12, mlp_ratio=4, qkv_bias=True,
              **CONFORMER_ARCHS[(arch, patch_size)]).eval()
    randomize_(ref)
    path = osp.join(tmp, f'Conformer_{arch}_patch{patch_size}.pth')
    torch.save(ref.state_dict(), path)
    err = compare_timm(f'conformer_{arch}_patch{patch_size}', path, lambda x: sum(ref(x)))
    os.remove(path)
    return err


def compare_conformer(cls: type, arch: str, patch_size: int, tmp: str) -> float:
    torch.manual_seed(0)
    ref = cls(patch_size=patch_size, depth=12, mlp_ratio=4, qkv_bias=True, norm_eval=True,
              frozen_stages=-1, **CONFORMER_ARCHS[(arch, patch_size)])
    ref.eval()  # (its train() override returns None)
    randomize_(ref)
    path = osp.join(tmp, f'conformer_{arch}{patch_size}.pth')
    torch.save(ref.state_dict(), path)
    ours = Conformer(arch, patch_size=patch_size,
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    ours.eval()
    worst = 0.
    for shape in ((1, 3, 224, 224), (1, 3, 256, 384)):
        x = torch.randn(*shape)
        with torch.no_grad():
            errs = [relative_error(a, b) for a, b in zip(ours(x), ref(x))]
        worst = max(worst, *errs)
        print(f'conformer {arch}/{patch_size:<2d} {str(tuple(shape)):17s} max relative error '
              'per output: ' + ' '.join(f'{e:.1e}' for e in errs), flush=True)
    os.remove(path)
    return worst


@tool_main(install_hint="the comparison needs the authors' dependencies (and, for --timm, "
                        'timm >= 1.0.30): pip install timm fairscale')
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--glmix-repo', help='clone of rayleizhu/GLMix')
    parser.add_argument('--conformer-repo', help='clone of pengzhiliang/Conformer')
    parser.add_argument('--archs', nargs='+', default=ARCHS, choices=ARCHS,
                        help='GLNet archs to compare')
    parser.add_argument('--tol', type=float, default=1e-4, help='max relative error allowed')
    parser.add_argument('--timm', action='store_true',
                        help='also compare the timm models of glmix_mm.timm (needs timm >= 1.0.30)')
    args = parser.parse_args(argv)
    if not (args.glmix_repo or args.conformer_repo):
        parser.error('give --glmix-repo and/or --conformer-repo')
    if args.glmix_repo and not osp.isfile(osp.join(args.glmix_repo, 'models', 'glnet.py')):
        parser.error(f'{args.glmix_repo} is not a clone of rayleizhu/GLMix (no models/glnet.py)')
    if args.conformer_repo and not osp.isfile(osp.join(args.conformer_repo, CONFORMER_FILE)):
        parser.error(f'{args.conformer_repo} is not a clone of pengzhiliang/Conformer (no '
                     f'{CONFORMER_FILE})')
    worst = compare_all(args)
    print(f'worst relative error {worst:.1e} (tolerance {args.tol:.0e})')
    return 0 if worst <= args.tol else 1


def compare_all(args: argparse.Namespace) -> float:
    """The worst relative error over everything ``args`` asks to compare."""
    worst = 0.
    if args.timm:
        import_timm_models(args.glmix_repo)
    with tempfile.TemporaryDirectory() as tmp:
        if args.glmix_repo:
            worst = max(compare(args.glmix_repo, arch, tmp, args.timm) for arch in args.archs)
        if args.conformer_repo:
            cls = upstream_conformer_class(args.conformer_repo)
            worst = max([worst] + [
                compare_conformer(cls, arch, patch, tmp) for arch, patch in CONFORMER_ARCHS])
        if args.conformer_repo and args.timm:
            cls = upstream_conformer_classifier(args.conformer_repo)
            worst = max([worst] + [
                compare_timm_conformer(cls, arch, patch, tmp) for arch, patch in CONFORMER_ARCHS])
    return worst


if __name__ == '__main__':
    sys.exit(main())
