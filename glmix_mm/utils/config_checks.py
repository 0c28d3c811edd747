"""Config mistakes answered with one line that names the problem and the fix.

The tools read a config and build its model through these, so that a wrong path, a config that
does not parse, a ``--cfg-options`` key below a value that is no dict or a misspelt ``type=``
ends in ``error: ...`` and exit code 2 instead of a traceback from deep inside MMEngine.
"""
import os.path as osp
import re
from contextlib import contextmanager
from collections.abc import Mapping
from typing import Iterator, Optional

from mmengine.config import Config

from glmix_mm.errors import GLMixMMError

# MMEngine's registry, for a type it does not hold: "<type> is not in the <scope>::<name>
# registry. Please check ...", wrapped by every enclosing build in "class `X` in y: ...".
_UNKNOWN_TYPE = re.compile(r'`?([\w.]+)`? is not in the ([\w:]+) registry')


class ConfigError(GLMixMMError, ValueError):
    """A config that cannot be read or built; the message says what to change (exit code 2)."""
    exit_code = 2


def read_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read the config at ``path`` (importing its ``custom_imports``) and merge ``cfg_options``.

    Raises:
        ConfigError: The file does not exist or is not a valid config.
    """
    if not osp.isfile(path):
        raise ConfigError(f'config file {path} not found; give the path of a config such as '
                          'configs/maskrcnn_glnet_4g_coco.py.')
    try:
        cfg = Config.fromfile(path)
    except (SyntaxError, NameError, ImportError, OSError) as e:  # parsing, _base_, imports
        raise ConfigError(f'cannot read config {path}: {type(e).__name__}: '
                          f'{str(e).splitlines()[0] if str(e) else e!r}') from None
    if cfg_options:
        merge_options(cfg, cfg_options)
    return cfg


def merge_options(cfg: Config, options: dict) -> None:
    """``cfg.merge_from_dict(options)`` (``--cfg-options KEY=VALUE ...``).

    Raises:
        ConfigError: A key sets an entry inside a value that is no dict (``init_cfg=None``, say);
            the message gives the options that replace that value whole.
    """
    try:
        cfg.merge_from_dict(options)
    except TypeError:  # MMEngine: "... cannot inherit from base because ..."
        raise ConfigError(_not_a_dict(cfg, options)) from None


_ABSENT = object()


def _child(node, part: str):
    """``node[part]`` of a config dict or list (a list index as digits), or ``_ABSENT``."""
    if isinstance(node, Mapping):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return _ABSENT


def _not_a_dict(cfg: Config, options: dict) -> str:
    """The message for options whose key passes through a config value that is no dict."""
    for key, value in options.items():
        node, parts = cfg.to_dict(), key.split('.')
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part)
            if node is _ABSENT:
                break  # a new key: MMEngine creates the dicts below it
            if isinstance(node, (Mapping, list)):
                continue
            prefix = '.'.join(parts[:depth + 1])
            settings = {k[len(prefix) + 1:]: v for k, v in options.items()
                        if k.startswith(prefix + '.')}
            if prefix.endswith('init_cfg') and 'type' not in settings:
                settings = dict(type='Pretrained', **settings)
            whole = ' '.join([f'{prefix}._delete_=True'] +
                             [f'{prefix}.{k}={v}' for k, v in settings.items()])
            return (f'--cfg-options {key}={value}: {prefix} is {node!r} in the config, not a '
                    f'dict whose keys can be set; replace it whole with --cfg-options {whole}')
    return f'--cfg-options {options}: cannot be merged into the config'


@contextmanager
def unknown_types_refused() -> Iterator[None]:
    """Turn the registry's error for an unknown ``type=`` into a :class:`ConfigError`; every
    other error passes unchanged."""
    try:
        yield
    except KeyError as e:
        match = _UNKNOWN_TYPE.search(str(e.args[0]) if e.args else '')
        if match is None:
            raise
        kind, registry = match.groups()
        raise ConfigError(
            f'unknown type {kind!r} in the config: it is not in the {registry} registry. Check '
            "its spelling; a glmix_mm type (GLNet, Conformer) needs custom_imports = "
            "dict(imports=['glmix_mm']).") from None
