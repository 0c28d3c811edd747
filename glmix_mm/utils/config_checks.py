"""Config mistakes answered with one line that names the problem and the fix.

The tools read a config and build its model through these, so that a wrong path, a config that
does not parse or a misspelt ``type=`` ends in ``error: ...`` and exit code 2 instead of a
traceback from deep inside MMEngine.
"""
import os.path as osp
import re
from contextlib import contextmanager
from typing import Iterator, Optional

from mmengine.config import Config

# MMEngine's registry, for a type it does not hold: "<type> is not in the <scope>::<name>
# registry. Please check ...", wrapped by every enclosing build in "class `X` in y: ...".
_UNKNOWN_TYPE = re.compile(r'`?([\w.]+)`? is not in the ([\w:]+) registry')


class ConfigError(ValueError):
    """A config that cannot be read or built; the message says what to change."""


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
        cfg.merge_from_dict(cfg_options)
    return cfg


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
