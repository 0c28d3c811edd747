"""Write an MMPretrain GLNet classifier checkpoint in the layout of the upstream GLNet releases.

The inverse of ``glnet2mm.py --cls``: a checkpoint of ``configs/glnet_*_in1k.py`` (or of the
pretraining demo, ``configs/demo/glnet_4g_pretrain_demo.py``) becomes a dict with the upstream
training script's keys, ``model`` (the trained weights), ``model_ema`` (their EMA, when the run
had MMEngine's ``EMAHook``), ``epoch`` and ``args``, and the upstream parameter names (the
pre-head norm ``norm.*``, the classifier ``head.*``). ``init_cfg=dict(type='Pretrained')``,
``glnet2mm.py`` and ``compare_with_upstream.py`` then read it exactly as they read a downloaded
release. The optimizer and loss-scaler states of a release are not written (nothing reads them
for fine-tuning); ``args`` is a plain dict naming the source file and its config, not hydra's
OmegaConf object.

A checkpoint saved with ``EMAHook`` holds the EMA weights under ``state_dict`` and the trained
ones under ``ema_state_dict`` (MMEngine swaps them so that the file deploys its EMA); they go to
``model_ema`` and ``model`` respectively.

Example::

    python tools/model_converters/mm2glnet.py work_dirs/glnet_4g_pretrain_demo/epoch_8.pth \
        checkpoints/demo/glnet_4g_pretrained.pth
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Mapping

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from glnet2mm import detect_arch  # noqa: E402

import torch  # noqa: E402

from glmix_mm.checkpoint import StateDict, load_local_checkpoint  # noqa: E402
from glmix_mm.checkpoint.unpickling import CheckpointLoadError  # noqa: E402

# MMPretrain classifier prefixes -> upstream names (glnet2mm.CLS_RENAMES reversed); the pre-head
# norm before the backbone's other keys.
TO_UPSTREAM = (('backbone.norm3.', 'norm.'), ('head.fc.', 'head.'),
               ('head.aux_fc.', 'tklb_aux_head.'), ('backbone.', ''))


def to_upstream_names(state_dict: Mapping) -> StateDict:
    """Rename a classifier state dict to upstream names; keys of no known part are refused."""
    renamed = OrderedDict()
    for key, value in state_dict.items():
        prefix = next((p for p, _ in TO_UPSTREAM if key.startswith(p)), None)
        if prefix is None:
            raise RuntimeError(f'{key!r} belongs to no part of a GLNet classifier (backbone, '
                               'head); is this an MMPretrain ImageClassifier with a GLNet '
                               'backbone?')
        renamed[dict(TO_UPSTREAM)[prefix] + key[len(prefix):]] = value
    return renamed


def convert(checkpoint: Mapping, source: str = '') -> Dict[str, object]:
    """The release-layout dict of a loaded MMPretrain GLNet classifier checkpoint.

    Args:
        checkpoint (Mapping): The loaded MMEngine checkpoint (``state_dict``, ``meta``, and
            ``ema_state_dict`` when trained with ``EMAHook``).
        source (str): Where it came from, recorded in ``args``.
    """
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get('state_dict'),
                                                             Mapping):
        raise RuntimeError('not an MMEngine checkpoint: it has no state_dict')
    weights = to_upstream_names(checkpoint['state_dict'])
    release = OrderedDict(model=weights)
    ema = checkpoint.get('ema_state_dict')
    if isinstance(ema, Mapping):
        raw = {k[len('module.'):]: v for k, v in ema.items() if k.startswith('module.')}
        release['model'] = to_upstream_names(raw)
        release['model_ema'] = weights
    arch = detect_arch(release['model'])  # refuses weights that fit no GLNet arch
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), Mapping) else {}
    release['epoch'] = int(meta.get('epoch', 0))
    release['args'] = dict(model=f'glnet_{arch}', converted_from=osp.basename(source),
                           mmengine_config=str(meta.get('cfg', '')))
    return release


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='MMPretrain ImageClassifier checkpoint with a GLNet backbone')
    parser.add_argument('dst', help='where to write the release-layout checkpoint (.pth)')
    args = parser.parse_args(argv)
    if not args.dst.endswith('.pth'):
        parser.error(f'dst {args.dst!r}: the release layout is a torch.save file; give a .pth '
                     'path')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        print(f'error: {args.src} is not a file', file=sys.stderr)
        return 1
    try:
        release = convert(load_local_checkpoint(args.src, 'cpu'), args.src)
    except CheckpointLoadError as e:  # its message names the file
        print(f'error: {e}', file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f'error: {args.src}: {e}', file=sys.stderr)
        return 1
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save(release, args.dst)
    print(f'{args.src} -> {args.dst}: {release["args"]["model"]}, epoch {release["epoch"]}, '
          f'{len(release["model"])} tensors' +
          (' (+ EMA)' if 'model_ema' in release else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
