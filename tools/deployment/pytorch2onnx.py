"""Export a GLNet / Conformer backbone to ONNX (or ``torch.export``) with dynamic batch, height
and width, then check the exported graph against PyTorch at other sizes.

The backbone comes from an arch name or from a config's ``model.backbone``, with random weights
(seed ``--seed``) or the weights of ``--checkpoint`` (a backbone file, an upstream release or a
whole detector / segmentor / classifier checkpoint, read like ``init_cfg=dict(type='Pretrained')``
reads it). After the export, every ``--verify-shapes`` size runs through ONNX Runtime (or the
``ExportedProgram``) and through the eager model on the same random input; the largest relative
error of each output (``max|onnx - torch| / max|torch|``) is printed, and the exit status is 1 if
any exceeds ``--tolerance``.

Examples::

    python tools/deployment/pytorch2onnx.py --arch 4g --out glnet_4g.onnx
    python tools/deployment/pytorch2onnx.py --arch 4g --mhsa-window 14 --exporter dynamo \
        --shape 1x3x224x224 --verify-shapes 1x3x224x224 2x3x256x320 1x3x200x328 1x3x480x640
    python tools/deployment/pytorch2onnx.py --config configs/maskrcnn_glnet_4g_coco.py \
        --checkpoint work_dirs/maskrcnn_glnet_4g_coco/epoch_12.pth --out glnet_backbone.onnx
    python tools/deployment/pytorch2onnx.py --arch conformer-s32 --torch-export
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import torch
import torch.nn as nn

from glmix_mm.analysis.inputs import parse_shape
from glmix_mm.analysis.zoo import CONFORMER_ARCHS
from glmix_mm.checkpoint import CheckpointNotFoundError
from glmix_mm.deploy import onnx_export
from glmix_mm.errors import UsageError
from glmix_mm.models import Conformer, GLNet  # (also registers the models)
from glmix_mm.utils import read_config, tool_main

# Verified by default: the export size, a second batch, sizes that are not multiples of 32 and a
# size larger than the export size (Conformer: sizes it accepts).
DEFAULT_VERIFY = ('2x3x256x320', '1x3x200x328', '1x3x480x640')
DEFAULT_VERIFY_CONFORMER = ('2x3x256x320', '1x3x224x352', '1x3x480x640')


def glnet_arch(name: str) -> str:
    name = name[len('glnet-'):] if name.startswith('glnet-') else name
    return name


def backbone_cfg_from_arch(arch: str, mhsa_window: Optional[int]) -> dict:
    """The constructor config of the backbone named ``arch`` (GLNet arch or ``conformer-*``)."""
    if arch in CONFORMER_ARCHS:
        if mhsa_window is not None:
            raise UsageError('--mhsa-window is a GLNet option; Conformer has none.')
        return dict(type='glmix_mm.Conformer', **CONFORMER_ARCHS[arch])
    name = glnet_arch(arch)
    known = sorted(GLNet.arch_zoo) + sorted(GLNet.arch_aliases)
    if name not in known:
        raise UsageError(f'unknown --arch {arch!r}; choose a GLNet arch ({", ".join(known)}) or '
                         f'one of {", ".join(CONFORMER_ARCHS)}.')
    return dict(type='glmix_mm.GLNet', arch=name, mhsa_window=mhsa_window)


def backbone_cfg_from_config(path: str, mhsa_window: Optional[int]) -> dict:
    """``model.backbone`` of the config file ``path``."""
    if not osp.isfile(path):
        raise UsageError(f'config {path!r} does not exist.')
    cfg = read_config(path)
    backbone = cfg.get('model', {}).get('backbone')
    if backbone is None:
        raise UsageError(f'{path} has no model.backbone to export.')
    backbone = backbone.to_dict()
    if mhsa_window is not None:
        backbone['mhsa_window'] = mhsa_window
    return backbone


def build_backbone(backbone_cfg: dict, checkpoint: Optional[str], seed: int) -> nn.Module:
    """Build the backbone (random weights from ``seed``, then ``checkpoint`` if given) in eval
    mode."""
    from mmengine.logging import MMLogger
    from mmengine.registry import MODELS
    cfg = dict(backbone_cfg)
    cfg['init_cfg'] = None if checkpoint is None else dict(
        type='Pretrained', checkpoint=checkpoint)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise CheckpointNotFoundError(f'checkpoint {checkpoint!r} does not exist.')
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    if not isinstance(model, (GLNet, Conformer)):
        raise UsageError(f'the backbone is a {type(model).__name__}; this tool exports GLNet and '
                         'Conformer backbones.')
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # not the per-parameter initialisation report
    try:  # a checkpoint of another model: CheckpointMismatchError, with the mismatching keys
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.eval()


def describe(model: nn.Module) -> str:
    if isinstance(model, GLNet):
        window = f', mhsa_window={model.mhsa_window}' if model.mhsa_window else ''
        return f'GLNet(arch={model.arch_name!r}{window})'
    return f'Conformer(arch={model.arch_name!r}, patch_size={model.patch_size})'


def check_shapes(model: nn.Module, shapes: Sequence[onnx_export.Shape]) -> None:
    """Refuse sizes the eager model itself rejects, before exporting."""
    for shape in shapes:
        try:
            model._check_input(torch.empty(shape, device='meta'))
        except ValueError as error:
            raise UsageError(f'{"x".join(map(str, shape))}: {error}') from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a GLNet / Conformer backbone with dynamic sizes and verify it.')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--arch', help='GLNet arch (stl, 4g, 9g, ...) or conformer-ti / '
                        'conformer-s16 / conformer-s32 / conformer-b')
    source.add_argument('--config', help='a config whose model.backbone is exported')
    parser.add_argument('--mhsa-window', type=int, help='GLNet windowed MHSA (e.g. 14)')
    parser.add_argument('--checkpoint', help='weights (backbone or whole-model checkpoint)')
    parser.add_argument('--out', help='output file (default: <arch>.onnx, or .pt2 with '
                        '--torch-export)')
    parser.add_argument('--exporter', choices=onnx_export.EXPORTERS, default='torchscript',
                        help='torch.onnx.export with dynamo=False (torchscript) or dynamo=True')
    parser.add_argument('--opset', type=int, help='ONNX opset (default: 17 for torchscript, '
                        '18 for dynamo)')
    parser.add_argument('--torch-export', action='store_true',
                        help='torch.export.export instead of ONNX; checks the ExportedProgram')
    parser.add_argument('--shape', default='1x3x224x224', help='export example NxCxHxW')
    parser.add_argument('--verify-shapes', nargs='*', help='sizes to check (default: the export '
                        'size and ' + ' '.join(DEFAULT_VERIFY) + '); none to skip')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest relative error accepted')
    parser.add_argument('--seed', type=int, default=0, help='weights and inputs seed')
    return parser.parse_args(argv)


def export_and_verify(args: argparse.Namespace) -> int:
    backbone_cfg = (backbone_cfg_from_arch(args.arch, args.mhsa_window) if args.arch else
                    backbone_cfg_from_config(args.config, args.mhsa_window))
    model = build_backbone(backbone_cfg, args.checkpoint, args.seed)
    example_shape = parse_shape(args.shape)
    if args.verify_shapes is None:
        defaults = DEFAULT_VERIFY_CONFORMER if isinstance(model, Conformer) else DEFAULT_VERIFY
        args.verify_shapes = [args.shape] + [s for s in defaults if s != args.shape]
    shapes: List[onnx_export.Shape] = [parse_shape(s) for s in args.verify_shapes]
    check_shapes(model, [example_shape] + shapes)
    name = args.arch or osp.splitext(osp.basename(args.config))[0]
    out = args.out or f'{name}.{"pt2" if args.torch_export else "onnx"}'
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    example = onnx_export.random_input(example_shape, args.seed)

    if args.torch_export:
        program = onnx_export.export_program(model, example)
        torch.export.save(program, out)
        print(f'Exported {describe(model)} with torch.export (dynamic batch, height, width) at '
              f'{args.shape} to {out}')
        checks = onnx_export.verify_program(program, model, shapes, args.seed)
        title = 'ExportedProgram vs eager PyTorch'
    else:
        opset = args.opset or onnx_export.DEFAULT_OPSET[args.exporter]
        onnx_export.export_onnx(model, example, out, args.exporter, opset)
        print(f'Exported {describe(model)} with the {args.exporter} exporter (opset {opset}, '
              f'dynamic batch, height, width) at {args.shape} to {out} '
              f'({osp.getsize(out) / 2**20:.1f} MiB)')
        checks = onnx_export.verify_onnx(model, out, shapes, args.seed)
        title = 'ONNX Runtime vs PyTorch'
    if not checks:
        return 0
    print(onnx_export.format_checks(checks, args.tolerance,
                                    f'{title}, tolerance {args.tolerance:.0e}:'))
    failed = sum(not c.passes(args.tolerance) for c in checks)
    return onnx_export.sizes_verdict(failed, len(checks))


@tool_main(install_hint='install the deployment extra: pip install -e ".[deploy]"')
def main(argv=None) -> int:
    return export_and_verify(parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
