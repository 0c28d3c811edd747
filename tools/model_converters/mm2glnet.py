"""Write an MMPretrain GLNet classifier checkpoint in the layout of the upstream GLNet releases.

The inverse of ``glnet2mm.py --cls``: a checkpoint of ``configs/glnet_*_in1k.py`` (or of the
pretraining demo) becomes a dict with the upstream training script's keys, ``model``,
``model_ema`` (with MMEngine's ``EMAHook``), ``epoch`` and ``args``, and the upstream parameter
names, so that ``init_cfg=dict(type='Pretrained')``, ``glnet2mm.py`` and
``compare_with_upstream.py`` read it as they read a downloaded release (see
:func:`glmix_mm.models.converters.mm_to_glnet`). Optimizer and loss-scaler states are not
written; ``args`` is a plain dict naming the source file and its config.

Example::

    python tools/model_converters/mm2glnet.py work_dirs/glnet_4g_pretrain_demo/epoch_8.pth \
        checkpoints/demo/glnet_4g_pretrained.pth
"""
import argparse
import sys

import torch

from glmix_mm.checkpoint import convert_file
from glmix_mm.models.converters import mm_to_glnet
from glmix_mm.utils import tool_main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='MMPretrain ImageClassifier checkpoint with a GLNet backbone')
    parser.add_argument('dst', help='where to write the release-layout checkpoint (.pth)')
    args = parser.parse_args(argv)
    if not args.dst.endswith('.pth'):
        parser.error(f'dst {args.dst!r}: the release layout is a torch.save file; give a .pth '
                     'path')
    return args


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    release = convert_file(args.src, args.dst, lambda ckpt: mm_to_glnet(ckpt, args.src),
                           torch.save)
    print(f'{args.src} -> {args.dst}: {release["args"]["model"]}, epoch {release["epoch"]}, '
          f'{len(release["model"])} tensors' + (' (+ EMA)' if 'model_ema' in release else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
