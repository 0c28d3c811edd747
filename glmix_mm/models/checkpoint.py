"""Reading checkpoints: upstream releases, mmpretrain / OpenMMLab files and our own.

Two things live here:

* :func:`load_local_checkpoint`, registered as MMEngine's loader for local paths. PyTorch >= 2.6
  calls ``torch.load`` with ``weights_only=True`` by default, which MMEngine 0.10.7 does not
  expect: its own checkpoints (message hub, config, numpy scalars) and the upstream training
  checkpoints (argparse / OmegaConf ``args``) hold Python objects and fail to unpickle, so
  ``--resume``, ``load_from`` and ``init_cfg=dict(type='Pretrained')`` would all break. The loader
  tries the safe mode first and falls back to the pre-2.6 behaviour for such local files.
* :func:`load_pretrained`, used by the backbones' ``init_weights``: it finds the weights in any of
  the known layouts, lets the model family convert key names, and refuses checkpoints that do not
  fit the model with a report of the offending keys instead of loading them silently.
"""
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import CheckpointLoader

StateDict = Dict[str, torch.Tensor]

# Where the weights sit inside a checkpoint, by order of preference. ``state_dict``: OpenMMLab;
# ``model``: upstream GLNet releases (timm-style training scripts); ``model_ema``: the GLNet-16G
# release, whose EMA weights are the published ones; ``module``: DeepSpeed-style files.
STATE_DICT_KEYS = ('state_dict', 'model', 'model_ema', 'module')


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """Load a local checkpoint file; a drop-in replacement of MMEngine's ``load_from_local``.

    Args:
        filename (str): Path of the checkpoint.
        map_location (str | torch.device, optional): Same as :func:`torch.load`.

    Returns:
        dict: The loaded object.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint file {filename!r} does not exist. Download the released weights into '
            'checkpoints/ (see README, "Pretrained weights") or fix the path in the config.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # A checkpoint the user chose that holds more than tensors (MMEngine training state,
        # upstream ``args``): load it the way PyTorch < 2.6 and MMEngine always did.
        return torch.load(filename, map_location=map_location, weights_only=False)


CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)


def extract_state_dict(checkpoint: Mapping, preferred_key: Optional[str] = None) -> StateDict:
    """Return the tensors of a checkpoint, whatever container they come in.

    Args:
        checkpoint (Mapping): What :func:`torch.load` returned.
        preferred_key (str, optional): Look for this key first (e.g. ``'model_ema'``).

    Returns:
        dict: Parameter name to tensor, with any ``module.`` (DataParallel) prefix stripped.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'A checkpoint must be a dict, got {type(checkpoint).__name__}.')
    keys = ((preferred_key, ) if preferred_key else ()) + STATE_DICT_KEYS
    state_dict = next((checkpoint[k] for k in keys if isinstance(checkpoint.get(k), Mapping)),
                      checkpoint)
    return OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in state_dict.items()
                       if isinstance(v, torch.Tensor))


def strip_backbone_prefix(state_dict: StateDict) -> StateDict:
    """Keep the ``backbone.`` part of a whole-model (detector / classifier) state dict.

    A state dict without any ``backbone.`` key is returned unchanged.
    """
    if not any(k.startswith('backbone.') for k in state_dict):
        return state_dict
    return OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items()
                       if k.startswith('backbone.'))


def _preview(keys: Iterable[str], limit: int = 6) -> str:
    keys = list(keys)
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def state_dict_mismatch(model: nn.Module,
                        state_dict: StateDict,
                        optional_missing: Iterable[str] = ()) -> Tuple[list, list, list]:
    """Keys of ``model`` missing from ``state_dict``, keys it does not have, shape mismatches.

    Args:
        model (nn.Module): The model that would receive the weights.
        state_dict (dict): Weights with the model's own key names.
        optional_missing (Iterable[str]): Regular expressions of model keys that may be missing.
    """
    own = model.state_dict()
    patterns = [re.compile(p) for p in optional_missing]
    missing = [k for k in own if k not in state_dict and not any(p.match(k) for p in patterns)]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state_dict.items() if k in own and v.shape != own[k].shape
    ]
    return missing, unexpected, mismatched


def check_state_dict(model: nn.Module,
                     state_dict: StateDict,
                     description: str,
                     optional_missing: Iterable[str] = ()) -> None:
    """Raise a readable error when ``state_dict`` does not fit ``model`` exactly.

    Args:
        model (nn.Module): The model that will receive the weights.
        state_dict (dict): Converted weights, with the model's own key names.
        description (str): What the model is, for the message (e.g. ``GLNet(arch='4g')``).
        optional_missing (Iterable[str]): Regular expressions of model keys that a checkpoint may
            lack (layers that only exist downstream, such as the per-output norms).
    """
    missing, unexpected, mismatched = state_dict_mismatch(model, state_dict, optional_missing)
    if not (missing or unexpected or mismatched):
        return
    lines = [f'The checkpoint does not fit {description}.']
    if missing:
        lines.append(f'  {len(missing)} missing keys: {_preview(missing)}')
    if unexpected:
        lines.append(f'  {len(unexpected)} unexpected keys: {_preview(unexpected)}')
    if mismatched:
        lines.append(f'  {len(mismatched)} shape mismatches: {_preview(mismatched, 4)}')
    lines.append('  Is it a checkpoint of this model family and of this arch? Pick the `arch` '
                 'that matches the checkpoint, or convert it with tools/model_converters/.')
    raise RuntimeError('\n'.join(lines))


def load_pretrained(model: nn.Module,
                    filename: str,
                    description: str,
                    convert: Callable[[StateDict], StateDict] = lambda sd: sd,
                    preferred_key: Optional[str] = None,
                    optional_missing: Iterable[str] = ()) -> None:
    """Load a checkpoint into a backbone after conversion and a strict check.

    Args:
        model (nn.Module): The backbone.
        filename (str): Path or URL of the checkpoint (any MMEngine-supported scheme).
        description (str): What the model is, for messages.
        convert (Callable): Maps the checkpoint's backbone keys to the model's.
        preferred_key (str, optional): Container key to look at first, see
            :func:`extract_state_dict`.
        optional_missing (Iterable[str]): See :func:`check_state_dict`.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state_dict = convert(strip_backbone_prefix(extract_state_dict(checkpoint, preferred_key)))
    check_state_dict(model, state_dict, f'{description} (from {filename})', optional_missing)
    model.load_state_dict(state_dict, strict=False)
    kept = [k for k in model.state_dict() if k not in state_dict]
    print_log(
        f'Loaded {len(state_dict)} tensors into {description} from {filename}' +
        (f'; kept the initialisation of {_preview(kept)}' if kept else ''),
        logger=MMLogger.get_current_instance())
