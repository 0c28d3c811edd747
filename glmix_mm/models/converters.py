"""Converting checkpoints between the upstream releases and the OpenMMLab layout.

The cores of ``tools/model_converters/`` (which only read, call and write, through
:func:`glmix_mm.checkpoint.convert_file`):

* :func:`glnet_to_mm`: a released GLNet checkpoint (rayleizhu/GLMix) to
  ``{'state_dict': {'backbone.<key>': ...}, 'meta': ...}``, or with ``cls=True`` to an MMPretrain
  ``ImageClassifier`` checkpoint (``out_indices=(3, )``, ``out_norm=dict(type='BN')``: the pre-head
  norm becomes ``backbone.norm3``; ``head.fc`` and, for token labeling, ``head.aux_fc``);
* :func:`mm_to_glnet`: the inverse of ``cls=True``, an MMPretrain GLNet classifier checkpoint in
  the release layout (``model``, ``model_ema`` with ``EMAHook``, ``epoch``, ``args``);
* :func:`conformer_to_mm`: the authors' or MMPretrain's Conformer checkpoints to the layout of
  :class:`~glmix_mm.models.Conformer`.

Each recognises the arch from the weights (by building the models) and refuses weights that fit
no arch with the key report of :mod:`glmix_mm.checkpoint.fit`. The key names of each family are
those of its module (:data:`~glmix_mm.models.glnet.CLASSIFIER_PARTS`,
:func:`~glmix_mm.models.conformer.convert_conformer_state_dict`); nothing in
:mod:`glmix_mm.checkpoint` needs this module.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

from glmix_mm.checkpoint import (CheckpointMismatchError, FitReport, StateDict,
                                 check_state_dict, extract_state_dict, strip_backbone_prefix)

from .conformer import OPTIONAL_MISSING, Conformer, convert_conformer_state_dict
from .glnet import CLASSIFIER_PARTS, GLNet, backbone_weights

# MMPretrain ImageClassifier prefixes -> upstream GLNet names: the inverse of
# CLASSIFIER_PARTS, the pre-head norm before the backbone's other keys.
GLNET_TO_UPSTREAM = tuple((mm, upstream) for upstream, mm in CLASSIFIER_PARTS.items()) + (
    ('backbone.', ''), )

def detect_glnet_arch(state_dict: StateDict) -> str:
    """The ``GLNet.arch_zoo`` name whose backbone fits the upstream-named ``state_dict`` exactly.

    Raises:
        CheckpointMismatchError: No arch fits; the report of the closest one.
    """
    backbone = backbone_weights(state_dict)
    reports = {}
    for arch in GLNet.arch_zoo:
        reports[arch] = FitReport(GLNet(arch, out_norm=None), backbone)
        if reports[arch].fits:
            return arch
    closest = min(reports, key=lambda a: reports[a].num_problems)
    raise CheckpointMismatchError('\n'.join(
        [f'The checkpoint fits no GLNet arch ({", ".join(GLNet.arch_zoo)}); the closest is '
         f'{closest!r}:'] + reports[closest].lines()))


def glnet_to_mm(checkpoint: Mapping,
                arch: Optional[str] = None,
                weights_key: Optional[str] = None,
                cls: bool = False) -> Dict[str, object]:
    """An upstream GLNet checkpoint (as loaded) as an OpenMMLab checkpoint dict.

    Args:
        checkpoint (Mapping): The loaded upstream checkpoint.
        arch (str, optional): GLNet arch (aliases accepted); recognised from the weights if None.
        weights_key (str, optional): Container key of the weights; defaults to the published
            ones (``model_ema`` for 16G, else ``model``).
        cls (bool): An MMPretrain classifier checkpoint instead of a backbone one.
    """
    arch = GLNet.arch_aliases.get(arch, arch)
    state_dict = extract_state_dict(checkpoint, weights_key)
    arch = arch or detect_glnet_arch(state_dict)
    if weights_key is None and arch in GLNet.released_weights_key:
        state_dict = extract_state_dict(checkpoint, GLNet.released_weights_key[arch])
    check_state_dict(GLNet(arch, out_norm=None), backbone_weights(state_dict),
                     f'GLNet(arch={arch!r})')
    if cls:
        converted = {}
        for k, v in state_dict.items():
            prefix = next((p for p in CLASSIFIER_PARTS if k.startswith(p)), None)
            converted[CLASSIFIER_PARTS[prefix] + k[len(prefix):] if prefix else 'backbone.' +
                      k] = v
    else:
        converted = {'backbone.' + k: v for k, v in backbone_weights(state_dict).items()}
    return {'state_dict': converted, 'meta': dict(arch=arch, format='cls' if cls else 'backbone')}


def glnet_upstream_names(state_dict: Mapping) -> StateDict:
    """An MMPretrain GLNet classifier state dict with upstream names.

    Raises:
        ValueError: A key belongs to no part of a GLNet classifier.
    """
    renamed = OrderedDict()
    for key, value in state_dict.items():
        prefix = next((p for p, _ in GLNET_TO_UPSTREAM if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(f'{key!r} belongs to no part of a GLNet classifier (backbone, '
                             'head); is this an MMPretrain ImageClassifier with a GLNet '
                             'backbone?')
        renamed[dict(GLNET_TO_UPSTREAM)[prefix] + key[len(prefix):]] = value
    return renamed


def mm_to_glnet(checkpoint: Mapping, source: str = '') -> Dict[str, object]:
    """The release-layout dict of a loaded MMPretrain GLNet classifier checkpoint.

    Args:
        checkpoint (Mapping): The loaded MMEngine checkpoint (``state_dict``, ``meta``, and
            ``ema_state_dict`` when trained with ``EMAHook``, which swaps the two: the trained
            weights go to ``model``, their EMA to ``model_ema``).
        source (str): Where it came from, recorded in ``args``.
    """
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get('state_dict'),
                                                             Mapping):
        raise ValueError('not an MMEngine checkpoint: it has no state_dict')
    weights = glnet_upstream_names(checkpoint['state_dict'])
    release = OrderedDict(model=weights)
    ema = checkpoint.get('ema_state_dict')
    if isinstance(ema, Mapping):
        raw = {k[len('module.'):]: v for k, v in ema.items() if k.startswith('module.')}
        release['model'] = glnet_upstream_names(raw)
        release['model_ema'] = weights
    arch = detect_glnet_arch(release['model'])  # refuses weights that fit no GLNet arch
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), Mapping) else {}
    release['epoch'] = int(meta.get('epoch', 0))
    release['args'] = dict(model=f'glnet_{arch}', converted_from=osp.basename(source),
                           mmengine_config=str(meta.get('cfg', '')))
    return release


def detect_conformer_arch(state_dict: StateDict) -> Tuple[str, int]:
    """The released Conformer arch and patch size of a state dict with our key names.

    Raises:
        ValueError: Not a Conformer state dict, or no released arch matches.
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


def conformer_to_mm(checkpoint: Mapping,
                    arch: Optional[str] = None,
                    patch_size: Optional[int] = None,
                    source: str = '') -> Dict[str, object]:
    """The authors', MMPretrain's or an already converted Conformer checkpoint (as loaded) as
    ``{'state_dict': {'backbone.<key>': ...}, 'meta': ...}`` for :class:`Conformer`.

    Args:
        checkpoint (Mapping): The loaded checkpoint.
        arch (str, optional): Arch name; detected from the weights when omitted.
        patch_size (int, optional): 16 or 32; detected from the weights when omitted.
        source (str): The source file, recorded in ``meta``.
    """
    state_dict = convert_conformer_state_dict(
        strip_backbone_prefix(extract_state_dict(checkpoint)))
    found_arch, found_patch_size = detect_conformer_arch(state_dict)
    arch, patch_size = arch or found_arch, patch_size or found_patch_size
    check_state_dict(
        Conformer(arch=arch, patch_size=patch_size), state_dict,
        f'Conformer(arch={arch!r}, patch_size={patch_size})', OPTIONAL_MISSING)
    meta = dict(arch=arch, patch_size=patch_size, source=osp.basename(source),
                converter='tools/model_converters/conformer2mm.py')
    return {'state_dict': {f'backbone.{k}': v for k, v in state_dict.items()}, 'meta': meta}
