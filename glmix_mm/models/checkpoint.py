"""Reading checkpoints: upstream releases, mmpretrain / OpenMMLab files and our own.

Two things live here:

* :func:`load_local_checkpoint`, registered as MMEngine's loader for local paths (so it serves
  ``init_cfg=dict(type='Pretrained')``, ``load_from``, ``--resume`` and every library's
  ``load_checkpoint`` once ``glmix_mm`` is imported), and through :func:`load_url_safely` for
  downloaded ones (``https://``, ``torchvision://``, ...). It never runs code from a file:
  ``torch.save`` files go through :func:`~glmix_mm.models.safe_load.safe_torch_load`, which
  reads MMEngine training state and upstream ``args`` without importing or calling anything;
  ``.safetensors`` files hold tensors only. Full unpickling is used only for a file the user
  trusts by name (:class:`~glmix_mm.models.safe_load.trust_checkpoint`). Bad files (missing,
  empty, truncated, text, no dict) are refused with one line naming the file.
* :func:`load_pretrained`, used by the backbones' ``init_weights``: it finds the weights in any of
  the known layouts, lets the model family convert key names, and refuses checkpoints that do not
  fit the model with a report of the offending keys instead of loading them silently.
"""
import json
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple
from urllib.parse import urlparse

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .safe_load import (CheckpointLoadError, InertObject, first_sentence, full_torch_load,
                        is_trusted, safe_torch_load)

StateDict = Dict[str, torch.Tensor]

# Where the weights sit inside a checkpoint, by order of preference. ``state_dict``: OpenMMLab;
# ``model``: upstream GLNet releases (timm-style training scripts); ``model_ema``: the GLNet-16G
# release, whose EMA weights are the published ones; ``module``: DeepSpeed-style files.
STATE_DICT_KEYS = ('state_dict', 'model', 'model_ema', 'module')
# How a pre-1.6 torch.save file starts: pickle protocol 2, then its magic number (a LONG1).
LEGACY_MAGIC = b'\x80\x02\x8a\x0a' + torch.serialization.MAGIC_NUMBER.to_bytes(10, 'little')[:5]
# The safetensors metadata entry holding an OpenMMLab ``meta`` dict, as JSON.
SAFETENSORS_META_KEY = 'glmix_mm.meta'


def _file_format(filename: str) -> str:
    """``'zip'`` or ``'legacy'`` (``torch.save``) or ``'safetensors'``, from the first bytes."""
    with open(filename, 'rb') as f:
        head = f.read(12)
    if head.startswith(b'PK\x03\x04'):
        return 'zip'
    if head.startswith(LEGACY_MAGIC):
        return 'legacy'
    if head.startswith(b'\x80'):
        raise CheckpointLoadError(
            f'{filename}: a plain pickle file, not a torch.save checkpoint; plain pickles are not '
            'read (loading one runs code). Save checkpoints with torch.save.')
    if filename.endswith('.safetensors') or head[8:9] == b'{':
        return 'safetensors'
    kind = 'a text file' if head and all(32 <= b < 127 or b in b'\t\r\n' for b in head) \
        else 'an unknown format'
    raise CheckpointLoadError(
        f'{filename}: not a PyTorch or safetensors checkpoint (it starts with {head!r}: {kind}; '
        'an interrupted or failed download saves an HTML page). Download it again.')


def load_safetensors(filename: str, map_location=None) -> dict:
    """Load a ``.safetensors`` file as ``{'state_dict': tensors, 'meta': metadata}``.

    Args:
        filename (str): Path of the file.
        map_location (str | torch.device, optional): Device for the tensors; anything else
            (a function or dict, as ``torch.load`` accepts) loads them on the CPU.
    """
    from safetensors import SafetensorError, safe_open
    device = str(map_location) if isinstance(map_location, (str, torch.device)) else 'cpu'
    try:
        with safe_open(filename, framework='pt', device=device) as f:
            metadata = dict(f.metadata() or {})
            state_dict = OrderedDict((k, f.get_tensor(k)) for k in f.keys())
    except (SafetensorError, OSError, ValueError) as error:
        reason = first_sentence(error)
        raise CheckpointLoadError(f'{filename}: truncated or corrupt safetensors file '
                                  f'({reason}); download or copy it again.') from None
    meta = metadata
    packed = metadata.pop(SAFETENSORS_META_KEY, None)
    if packed is not None:
        try:
            meta = {**metadata, **json.loads(packed)}
        except ValueError:
            meta[SAFETENSORS_META_KEY] = packed
    return {'state_dict': state_dict, 'meta': meta}


def save_checkpoint(checkpoint: dict, filename: str) -> None:
    """Save an OpenMMLab-layout checkpoint with ``torch.save`` or, by extension, as safetensors.

    A ``.safetensors`` file keeps the tensors of ``checkpoint['state_dict']`` under their names
    and ``checkpoint['meta']`` (JSON-serialisable) as metadata; anything else is not kept.
    :func:`load_local_checkpoint` reads it back in the same ``state_dict`` / ``meta`` layout.

    Args:
        checkpoint (dict): ``{'state_dict': {name: tensor}, 'meta': {...}}``.
        filename (str): Output path.
    """
    if not filename.endswith('.safetensors'):
        torch.save(checkpoint, filename)
        return
    from safetensors.torch import save_file
    # safetensors refuses tensors that share memory; copies cost only converter time.
    tensors = {k: v.detach().cpu().contiguous().clone()
               for k, v in checkpoint['state_dict'].items()}
    metadata = {'format': 'pt'}
    if checkpoint.get('meta'):
        metadata[SAFETENSORS_META_KEY] = json.dumps(checkpoint['meta'], sort_keys=True)
    save_file(tensors, filename, metadata=metadata)


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """Load a local checkpoint file without running code from it.

    A drop-in replacement of MMEngine's ``load_from_local`` (see the module docstring).

    Args:
        filename (str): Path of the checkpoint (``torch.save`` file or ``.safetensors``).
        map_location (str | torch.device, optional): Same as :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointLoadError: Not a readable checkpoint file, or one that holds no dict.
        UnsafeCheckpointError: Readable only by running code from it, and not trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.exists(filename):
        raise FileNotFoundError(
            f'Checkpoint file {filename!r} does not exist. Download the released weights into '
            'checkpoints/ (see README, "Pretrained weights") or fix the path in the config.')
    if osp.isdir(filename):
        raise CheckpointLoadError(f'{filename}: is a directory; give the checkpoint file in it.')
    if osp.getsize(filename) == 0:
        raise CheckpointLoadError(f'{filename}: is empty (0 bytes), an interrupted download or '
                                  'copy; download or copy it again.')
    file_format = _file_format(filename)
    if file_format == 'safetensors':
        return load_safetensors(filename, map_location)
    if is_trusted(filename):
        checkpoint = full_torch_load(filename, map_location)
    else:
        checkpoint = safe_torch_load(filename, map_location, zip_format=file_format == 'zip')
    if not isinstance(checkpoint, Mapping):
        what = (f'a pickled {type(checkpoint).global_name} object' if isinstance(
            checkpoint, InertObject) else f'a {type(checkpoint).__name__}')
        raise CheckpointLoadError(
            f'{filename}: holds {what}, not a checkpoint dict; save a dict of tensors such as '
            "model.state_dict() or {'state_dict': model.state_dict()}.")
    return checkpoint


def load_url_safely(url: str,
                    model_dir: Optional[str] = None,
                    map_location=None,
                    progress: bool = True,
                    check_hash: bool = False,
                    file_name: Optional[str] = None) -> dict:
    """Download a checkpoint into torch's hub cache like ``torch.hub.load_state_dict_from_url``
    does, then read it with :func:`load_local_checkpoint` (never running code from it).

    MMEngine's ``http(s)://``, ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` schemes
    all load through ``load_url``, which is torch's function with ``weights_only=False``.
    """
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    filename = file_name or osp.basename(urlparse(url).path)
    cached_file = osp.join(model_dir, filename)
    if not osp.exists(cached_file):
        print_log(f'Downloading {url} to {cached_file}', logger='current')
        match = torch.hub.HASH_REGEX.search(filename) if check_hash else None
        torch.hub.download_url_to_file(url, cached_file, match and match.group(1), progress)
    return load_local_checkpoint(cached_file, map_location)


CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
# MMEngine's remote schemes call the module-level ``load_url``; one replacement covers them all.
mmengine_checkpoint.load_url = load_url_safely


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
