"""Convert a Conformer checkpoint to the glmix_mm / OpenMMLab downstream format.

Reads the authors' releases (classification models with heads, or detector checkpoints of their
MMDetection fork) and MMPretrain's Conformer checkpoints, and writes
``{'state_dict': {'backbone.<key>': tensor}, 'meta': {...}}`` with the key names of
``glmix_mm.models.Conformer`` (see :func:`glmix_mm.models.converters.conformer_to_mm`),
checked against a model of the detected (or given) arch before it is written.

Converting is optional: ``init_cfg=dict(type='Pretrained', checkpoint=SRC)`` also loads the
original files as they are (read without running code from them). A ``dst`` ending in
``.safetensors`` is written as safetensors (``meta`` as JSON metadata).

Example::

    python tools/model_converters/conformer2mm.py \\
        Conformer_small_patch32.pth checkpoints/conformer-small-p32_glmix-mm.pth
"""
import argparse
import sys
from typing import Optional, Sequence

from glmix_mm.checkpoint import convert_file, save_checkpoint
from glmix_mm.models.converters import conformer_to_mm
from glmix_mm.utils import tool_main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='output path (.pth, or .safetensors for a tensors-only file)')
    parser.add_argument('--arch', choices=['tiny', 'small', 'base'],
                        help='arch (default: detected from the weights)')
    parser.add_argument('--patch-size', type=int, choices=[16, 32],
                        help='patch size (default: detected from the weights)')
    return parser.parse_args(argv)


@tool_main
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    result = convert_file(
        args.src, args.dst,
        lambda ckpt: conformer_to_mm(ckpt, args.arch, args.patch_size, args.src),
        save_checkpoint)
    meta = result['meta']
    print(f'Saved Conformer(arch={meta["arch"]!r}, patch_size={meta["patch_size"]}) weights to '
          f'{args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
