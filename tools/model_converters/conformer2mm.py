"""Convert a Conformer checkpoint to the glmix_mm / OpenMMLab downstream format.

Reads the authors' releases (classification models with heads, or detector checkpoints of their
MMDetection fork) and MMPretrain's Conformer checkpoints, and writes
``{'state_dict': {'backbone.<key>': tensor}, 'meta': {...}}`` with the key names of
``glmix_mm.models.Conformer``: classification heads and the classifier norm are dropped and the
transformer-block names are mapped to MMPretrain's. The result is checked against a model of the
detected (or given) arch before it is written.

Converting is optional: ``init_cfg=dict(type='Pretrained', checkpoint=SRC)`` also loads the
original files as they are (read without running code from them: their argparse ``args`` become
inert records, and are not kept). MMPretrain checkpoints already use the backbone's names;
converting them only strips the head.

A ``dst`` ending in ``.safetensors`` is written as safetensors: the same ``backbone.`` tensor
names, with ``meta`` as JSON metadata; glmix_mm reads it back in the ``state_dict`` / ``meta``
layout.

Example::

    python tools/model_converters/conformer2mm.py \\
        Conformer_small_patch32.pth checkpoints/conformer-small-p32_glmix-mm.pth
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

from glmix_mm.checkpoint import (StateDict, check_state_dict, extract_state_dict,
                                        load_local_checkpoint, save_checkpoint,
                                        strip_backbone_prefix)
from glmix_mm.models.conformer import Conformer, convert_conformer_state_dict
from glmix_mm.checkpoint.unpickling import CheckpointLoadError

OPTIONAL_MISSING = [r'.*num_batches_tracked$']


def infer_arch(state_dict: StateDict) -> Tuple[str, int]:
    """Find the released arch and patch size that the converted ``state_dict`` belongs to.

    Args:
        state_dict (dict): Weights with :class:`Conformer`'s key names.

    Returns:
        tuple[str, int]: Arch name and patch size.
    """
    needed = ('cls_token', 'conv_1.conv3.weight', 'trans_patch_conv.weight')
    if any(k not in state_dict for k in needed):
        raise ValueError(f'This does not look like a Conformer checkpoint: it lacks {needed}.')
    settings = dict(
        embed_dims=state_dict['cls_token'].shape[-1],
        channel_ratio=state_dict['conv_1.conv3.weight'].shape[0] // 64,
        depths=1 + len({k.split('.')[0]
                        for k in state_dict if k.startswith('conv_trans_')}))
    patch_size = state_dict['trans_patch_conv.weight'].shape[-1] * 4
    for name in ('tiny', 'small', 'base'):
        if all(Conformer.arch_zoo[name][k] == v for k, v in settings.items()):
            return name, patch_size
    raise ValueError(f'No released Conformer arch has {settings}; pass --arch and --patch-size.')


def convert(src: str,
            dst: str,
            arch: Optional[str] = None,
            patch_size: Optional[int] = None) -> Dict[str, object]:
    """Convert the checkpoint ``src`` and save it to ``dst``.

    Args:
        src (str): The authors', MMPretrain's or an already converted Conformer checkpoint.
        dst (str): Output path (``.safetensors``: a tensors-only file, see the module doc).
        arch (str, optional): Arch name; detected from the weights when omitted.
        patch_size (int, optional): 16 or 32; detected from the weights when omitted.

    Returns:
        dict: The ``meta`` written with the weights.
    """
    state_dict = convert_conformer_state_dict(
        strip_backbone_prefix(extract_state_dict(load_local_checkpoint(src, 'cpu'))))
    found_arch, found_patch_size = infer_arch(state_dict)
    arch, patch_size = arch or found_arch, patch_size or found_patch_size
    model = Conformer(arch=arch, patch_size=patch_size)
    check_state_dict(model, state_dict, f'Conformer(arch={arch!r}, patch_size={patch_size})',
                     OPTIONAL_MISSING)
    meta = dict(
        arch=arch,
        patch_size=patch_size,
        source=osp.basename(src),
        converter='tools/model_converters/conformer2mm.py')
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    save_checkpoint({
        'state_dict': {f'backbone.{k}': v for k, v in state_dict.items()},
        'meta': meta
    }, dst)
    return meta


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when None.

    Returns:
        argparse.Namespace: ``src``, ``dst``, ``arch`` and ``patch_size``.
    """
    parser = argparse.ArgumentParser(
        description='Convert a Conformer checkpoint (authors\' or MMPretrain\'s) to the '
        'glmix_mm format: backbone.* keys of glmix_mm.models.Conformer.')
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='output path (.pth, or .safetensors for a tensors-only file)')
    parser.add_argument('--arch', choices=['tiny', 'small', 'base'],
                        help='arch (default: detected from the weights)')
    parser.add_argument('--patch-size', type=int, choices=[16, 32],
                        help='patch size (default: detected from the weights)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when None.
    """
    args = parse_args(argv)
    try:
        meta = convert(args.src, args.dst, args.arch, args.patch_size)
    except CheckpointLoadError as error:  # one line that names the file
        raise SystemExit(f'conformer2mm: {error}') from error
    except (FileNotFoundError, TypeError, ValueError, RuntimeError) as error:
        raise SystemExit(f'conformer2mm: cannot convert {args.src}:\n{error}') from error
    print(f'Saved Conformer(arch={meta["arch"]!r}, patch_size={meta["patch_size"]}) '
          f'weights to {args.dst}')


if __name__ == '__main__':
    main()
