"""Reading and writing checkpoint files: ``torch.save`` files (local or downloaded) and
safetensors, never running code from a file.

:func:`load_local_checkpoint` is what MMEngine uses for every local path once ``glmix_mm`` is
imported (:func:`~glmix_mm.checkpoint.loaders.install_safe_loaders`), and, through
:func:`load_url_safely`, for downloaded ones. ``torch.save`` files are unpickled by
:func:`~glmix_mm.checkpoint.unpickling.safe_torch_load`, which reads MMEngine training state and
upstream ``args`` without importing or calling anything; ``.safetensors`` files hold tensors only.
Full unpickling is used only for a file the user trusts by name
(:class:`~glmix_mm.checkpoint.unpickling.trust_checkpoint`). Bad files (missing, empty, truncated,
text, no dict) are refused with one line naming the file.
"""
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Callable, Mapping, Optional
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log

from .fit import CheckpointMismatchError
from .unpickling import (CheckpointLoadError, CheckpointNotFoundError, InertObject,
                         first_sentence, full_torch_load, is_trusted, safe_torch_load)

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
        CheckpointNotFoundError: ``filename`` does not exist (a ``FileNotFoundError``).
        CheckpointLoadError: Not a readable checkpoint file, or one that holds no dict.
        UnsafeCheckpointError: Readable only by running code from it, and not trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.exists(filename):
        raise CheckpointNotFoundError(
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
        checkpoint = safe_torch_load(filename, map_location)
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


def convert_file(src: str, dst: str, convert: Callable[[Mapping], dict],
                 save: Callable[[dict, str], None]) -> dict:
    """What a converter tool does: read ``src`` safely, ``convert`` it, ``save`` it to ``dst``
    (creating its folder); nothing is written if it cannot be read or converted.

    Returns:
        dict: The converted checkpoint.

    Raises:
        CheckpointNotFoundError: ``src`` does not exist.
        CheckpointLoadError: ``src`` is not a readable checkpoint (the message names it).
        CheckpointMismatchError: ``convert`` refused its weights (a ``ValueError`` or
            ``TypeError`` of ``convert`` becomes one, its message prefixed with ``src``).
    """
    if not osp.exists(src):
        raise CheckpointNotFoundError(f'{src} does not exist')
    checkpoint = load_local_checkpoint(src, 'cpu')
    try:
        result = convert(checkpoint)
    except (CheckpointMismatchError, ValueError, TypeError) as error:
        raise CheckpointMismatchError(f'{src}: {error}') from None
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    save(result, dst)
    return result
