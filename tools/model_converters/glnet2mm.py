"""Convert a released GLNet checkpoint (rayleizhu/GLMix) to the OpenMMLab format.

Detection / segmentation (default): ``{'state_dict': {'backbone.<key>': ...}, 'meta': ...}`` with
the classification head and the pre-head norm dropped; load it with ``init_cfg=dict(
type='Pretrained', checkpoint=DST)`` or ``load_from``.

Classification (``--cls``): an mmpretrain ``ImageClassifier`` checkpoint for a GLNet backbone with
``out_indices=(3, )`` and ``out_norm=dict(type='BN')`` (the pre-head norm becomes
``backbone.norm3``), a ``GlobalAveragePooling`` neck and a linear head (``head.fc``; the
token-labeling auxiliary head becomes ``head.aux_fc``).

The arch is recognised from the weights (or given with ``--arch``); a file that is no GLNet
checkpoint is refused with a report of the keys that do not fit. The released files are read
without running code from them (their hydra ``args`` become inert records, and are not kept).

A ``DST`` ending in ``.safetensors`` is written as safetensors: the same ``backbone.`` (or
classifier) tensor names, with ``meta`` as JSON metadata; glmix_mm reads it back in the
``state_dict`` / ``meta`` layout, for ``init_cfg``, ``load_from`` and the tools alike.

Example::

    python tools/model_converters/glnet2mm.py checkpoints/glnet_4g.pth \
        checkpoints/glnet_4g_mm.pth  # or checkpoints/glnet_4g_mm.safetensors
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, Optional

from glmix_mm.models import GLNet
from glmix_mm.checkpoint import (FitReport, StateDict, check_state_dict, extract_state_dict,
                                 load_local_checkpoint, save_checkpoint)
from glmix_mm.checkpoint.unpickling import CheckpointLoadError

CLS_RENAMES = {'norm.': 'backbone.norm3.', 'head.': 'head.fc.', 'tklb_aux_head.': 'head.aux_fc.'}


def backbone_keys(state_dict: StateDict) -> StateDict:
    """The weights of the backbone alone (no head, no pre-head norm)."""
    return {k: v for k, v in state_dict.items() if not k.startswith(tuple(CLS_RENAMES))}


def detect_arch(state_dict: StateDict) -> str:
    """Return the ``GLNet.arch_zoo`` name whose backbone fits ``state_dict`` exactly."""
    backbone = backbone_keys(state_dict)
    problems = {}
    for arch in GLNet.arch_zoo:
        report = FitReport(GLNet(arch, out_norm=None), backbone)
        problems[arch] = len(report.missing) + len(report.unexpected) + len(report.shapes)
        if problems[arch] == 0:
            return arch
    closest = min(problems, key=problems.get)
    try:
        check_state_dict(GLNet(closest, out_norm=None), backbone, f'GLNet(arch={closest!r})')
    except RuntimeError as e:
        raise RuntimeError(f'The checkpoint fits no GLNet arch ({", ".join(GLNet.arch_zoo)}); '
                           f'the closest is {closest!r}. {e}') from None


def convert(checkpoint: dict, arch: Optional[str] = None, weights_key: Optional[str] = None,
            cls: bool = False) -> Dict[str, object]:
    """Convert an upstream checkpoint (as loaded) to an OpenMMLab checkpoint dict.

    Args:
        checkpoint (dict): The loaded upstream checkpoint.
        arch (str, optional): GLNet arch; recognised from the weights if None.
        weights_key (str, optional): Container key of the weights; defaults to the published
            ones (``model_ema`` for 16G, else ``model``).
        cls (bool): Produce an mmpretrain classifier checkpoint instead of a backbone one.
    """
    state_dict = extract_state_dict(checkpoint, weights_key)
    arch = arch or detect_arch(state_dict)
    if weights_key is None and arch in GLNet.released_weights_key:
        state_dict = extract_state_dict(checkpoint, GLNet.released_weights_key[arch])
    check_state_dict(GLNet(arch, out_norm=None), backbone_keys(state_dict),
                     f'GLNet(arch={arch!r})')
    if cls:
        converted = {}
        for k, v in state_dict.items():
            prefix = next((p for p in CLS_RENAMES if k.startswith(p)), None)
            converted[CLS_RENAMES[prefix] + k[len(prefix):] if prefix else 'backbone.' + k] = v
    else:
        converted = {'backbone.' + k: v for k, v in backbone_keys(state_dict).items()}
    return {'state_dict': converted, 'meta': dict(arch=arch, format='cls' if cls else 'backbone')}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='released GLNet checkpoint (.pth)')
    parser.add_argument('dst', help='where to save the converted checkpoint (.pth, or '
                        '.safetensors for a tensors-only file)')
    parser.add_argument('--arch', choices=sorted(GLNet.arch_zoo) + sorted(GLNet.arch_aliases),
                        help='GLNet arch (default: recognised from the weights)')
    parser.add_argument('--weights-key', help='container key of the weights, e.g. model_ema')
    parser.add_argument('--cls', action='store_true',
                        help='write an mmpretrain ImageClassifier checkpoint (with the head)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        print(f'error: {args.src} is not a file', file=sys.stderr)
        return 1
    arch = GLNet.arch_aliases.get(args.arch, args.arch)
    try:
        result = convert(load_local_checkpoint(args.src, 'cpu'), arch, args.weights_key,
                         args.cls)
    except CheckpointLoadError as e:  # its message names the file
        print(f'error: {e}', file=sys.stderr)
        return 1
    except (RuntimeError, TypeError) as e:
        print(f'error: {args.src}: {e}', file=sys.stderr)
        return 1
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    save_checkpoint(result, args.dst)
    print(f'{args.src} -> {args.dst}: GLNet-{result["meta"]["arch"]}, '
          f'{len(result["state_dict"])} tensors ({result["meta"]["format"]} format)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
