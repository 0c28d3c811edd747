"""Whether the pretrained weights a config's ``init_cfg`` names are on disk, checked before
training starts: a missing file gets one line with the fix instead of a traceback from inside
the first ``init_weights()``."""
import os.path as osp
from typing import Iterator, Tuple

from mmengine.config import Config

from glmix_mm.errors import GLMixMMError


class PretrainedNotFoundError(GLMixMMError, FileNotFoundError):
    """An ``init_cfg`` of the config names a checkpoint file that does not exist (exit code
    2)."""
    exit_code = 2


def _pretrained_files(node, key: str) -> Iterator[Tuple[str, str]]:
    """``(config key, path)`` of every ``init_cfg=dict(type='Pretrained', checkpoint=...)``
    below ``node``."""
    if isinstance(node, dict):
        if str(node.get('type', '')).split('.')[-1] == 'Pretrained' and isinstance(
                node.get('checkpoint'), str):
            yield f'{key}.checkpoint', node['checkpoint']
        for name, value in node.items():
            yield from _pretrained_files(value, f'{key}.{name}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_files(value, f'{key}.{i}')


def check_pretrained_weights(cfg: Config) -> None:
    """Raise :class:`PretrainedNotFoundError` if a local checkpoint that the model's
    ``init_cfg`` loads is missing (URLs are left to the download)."""
    for key, path in _pretrained_files(cfg.get('model'), 'model'):
        if '://' in path or osp.isfile(osp.expanduser(path)):
            continue
        init_cfg = key[:-len('.checkpoint')]
        raise PretrainedNotFoundError(
            f'{key}={path} does not exist: download the released weights there (README, '
            f'"Pretrained weights"), point it at your copy with --cfg-options {key}=PATH, or '
            f'train from scratch with --cfg-options {init_cfg}=None.')
