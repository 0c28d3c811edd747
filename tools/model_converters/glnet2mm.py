"""Convert a released GLNet checkpoint (rayleizhu/GLMix) to the OpenMMLab format.

Detection / segmentation (default): ``{'state_dict': {'backbone.<key>': ...}, 'meta': ...}`` with
the classification head and the pre-head norm dropped; load it with ``init_cfg=dict(
type='Pretrained', checkpoint=DST)`` or ``load_from``. Classification (``--cls``): an mmpretrain
``ImageClassifier`` checkpoint (see :func:`glmix_mm.models.converters.glnet_to_mm`).

The arch is recognised from the weights (or given with ``--arch``); a file that is no GLNet
checkpoint is refused with a report of the keys that do not fit. The released files are read
without running code from them (their hydra ``args`` become inert records, and are not kept).
A ``DST`` ending in ``.safetensors`` is written as safetensors (``meta`` as JSON metadata).

Example::

    python tools/model_converters/glnet2mm.py checkpoints/glnet_4g.pth \
        checkpoints/glnet_4g_mm.pth  # or checkpoints/glnet_4g_mm.safetensors
"""
import argparse
import sys

from glmix_mm.checkpoint import convert_file, save_checkpoint
from glmix_mm.models import GLNet
from glmix_mm.models.converters import glnet_to_mm
from glmix_mm.utils import tool_main


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


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    result = convert_file(args.src, args.dst,
                          lambda ckpt: glnet_to_mm(ckpt, args.arch, args.weights_key, args.cls),
                          save_checkpoint)
    print(f'{args.src} -> {args.dst}: GLNet-{result["meta"]["arch"]}, '
          f'{len(result["state_dict"])} tensors ({result["meta"]["format"]} format)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
