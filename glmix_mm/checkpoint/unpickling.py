"""Unpickling checkpoints without running code from them.

``torch.load(weights_only=True)`` parses a pickle with its own restricted unpickler, which only
calls the functions and classes of an allowlist. :func:`safe_torch_load` keeps that unpickler
doing all the parsing and widens its allowlist, for the duration of one load, with:

* the objects MMEngine training checkpoints carry: the message hub's ``HistoryBuffer`` (and the
  ``getattr(HistoryBuffer, 'min')``-style references to its statistics methods), numpy arrays,
  dtypes and scalars (the random states of ``RNGStateHook`` and the logged values);
* one inert stand-in class per other global the file names (hydra's OmegaConf ``DictConfig``,
  argparse ``Namespace``, any unknown class or function): the names are listed from the file
  without executing it, nothing of them is imported, and "calling" a stand-in only records its
  arguments (:class:`InertObject`). So upstream training checkpoints load on a default install,
  and the ``__reduce__`` payload of a crafted file is read as data.

Full unpickling (``weights_only=False``) is only used for files the user trusts explicitly, by
path: :class:`trust_checkpoint` or the ``GLMIX_MM_TRUSTED_CHECKPOINTS`` environment variable.
"""
import copyreg
import os
import os.path as osp
import pickle
import pickletools
import shlex
import threading
from contextlib import contextmanager
from copy import deepcopy
from typing import Any, Dict, Iterator, List, Set, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

TRUSTED_ENV = 'GLMIX_MM_TRUSTED_CHECKPOINTS'
# Modules torch's weights-only unpickler refuses even when allowlisted: no stand-in can replace
# them, and no honest checkpoint names them.
BLOCKED_MODULES = ('os', 'posix', 'nt', 'sys')
# Stand-ins are created per distinct name; a file naming more than this is refused.
MAX_FOREIGN_GLOBALS = 1000
# Foreign names that no data class has: a file naming one was most likely crafted to run code.
_CODE_MODULES = ('subprocess', 'shutil', 'importlib', 'runpy', 'pickle', 'marshal', 'ctypes',
                 'socket', 'code', 'pty', 'webbrowser', 'multiprocessing', 'signal')
_DATA_BUILTINS = ('dict', 'list', 'tuple', 'set', 'frozenset', 'int', 'float', 'str', 'bytes',
                  'bool', 'complex', 'slice', 'range', 'object', 'type', 'NoneType')

_trusted_files: Set[str] = set()
# torch's allowlist is process-wide state: loads through this module take turns, so that one
# load's exit never removes entries that another one still needs.
_load_lock = threading.RLock()


class CheckpointLoadError(RuntimeError):
    """A checkpoint file cannot be read (missing, empty, truncated, not a checkpoint...)."""


class UnsafeCheckpointError(CheckpointLoadError, pickle.UnpicklingError):
    """A checkpoint cannot be read without running code from it, and it is not trusted."""


# ------------------------------------------------------------------------------------------------
# Inert stand-ins
# ------------------------------------------------------------------------------------------------
class _InertMeta(type):
    """Metaclass of the stand-ins: their classes print by the foreign name they stand for."""
    global_name = '?'

    def __repr__(cls) -> str:
        return f'<inert class {cls.global_name}>'


class InertObject(metaclass=_InertMeta):
    """What a foreign class or function of a checkpoint becomes: a record, never a call.

    The unpickler "calls" the stand-in of a global (``REDUCE``), creates it (``NEWOBJ``) and sets
    its state (``BUILD``); each of these only stores what it was given.

    Attributes:
        global_name (str): The name the file used, e.g. ``'argparse.Namespace'``.
        args (tuple): The arguments it would have been called or created with.
        state: The state it would have been given (e.g. the ``__dict__`` of an instance).
    """

    def __new__(cls, *args):
        obj = super().__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args) -> None:
        pass  # the arguments are recorded by __new__

    def __setstate__(self, state) -> None:
        self.state = state

    def __copy__(self) -> 'InertObject':
        copy = type(self).__new__(type(self), *self.args)
        copy.state = self.state
        return copy

    def __deepcopy__(self, memo: dict) -> 'InertObject':
        copy = type(self).__new__(type(self))
        memo[id(self)] = copy  # records of upstream configs point back to their parents
        copy.args, copy.state = deepcopy(self.args, memo), deepcopy(self.state, memo)
        return copy

    def __reduce_ex__(self, protocol):
        raise TypeError(_unsaveable(type(self)))

    def __repr__(self) -> str:
        state = '' if self.state is None else f', state={self.state!r}'
        return f'<inert {type(self).global_name}{self.args!r}{state}>'


_inert_classes: Dict[str, _InertMeta] = {}


def inert_class(global_name: str) -> _InertMeta:
    """The stand-in class for the foreign global ``global_name`` (one class per name).

    Args:
        global_name (str): ``module.qualname`` as the pickle names it.
    """
    if global_name not in _inert_classes:
        _inert_classes[global_name] = _InertMeta(
            global_name.rpartition('.')[2] or 'InertObject', (InertObject, ),
            dict(global_name=global_name, __module__=__name__,
                 __qualname__=f'InertObject[{global_name}]'))
    return _inert_classes[global_name]


def _unsaveable(cls: _InertMeta) -> str:
    return (f'{cls.global_name} was read from a checkpoint as an inert record, which cannot be '
            'saved again; drop it first (e.g. del checkpoint[\'args\']).')


def _refuse_to_pickle_class(cls: _InertMeta):
    raise TypeError(_unsaveable(cls))


# pickle consults copyreg for classes whose metaclass is registered there.
copyreg.pickle(_InertMeta, _refuse_to_pickle_class)


# What ``getattr`` gives for anything but HistoryBuffer's methods: one stand-in class, allowed
# in every load, since a class created during a load could not be called or built by torch's
# unpickler. (Protocol-2 pickles reach nested classes and methods, e.g. ``Path.touch``, this way.)
_GETATTR_RESULT = inert_class('getattr(...)')


def _checkpoint_getattr(obj: Any, name: Any) -> Any:
    """``getattr`` as MMEngine checkpoints use it, and nothing more.

    A pickled ``HistoryBuffer`` refers to its statistics methods as ``getattr(HistoryBuffer,
    'min')``; those four are returned. Any other attribute is the inert ``getattr(...)`` class.
    """
    if obj is HistoryBuffer and name in ('min', 'max', 'current', 'mean'):
        return getattr(HistoryBuffer, name)
    return _GETATTR_RESULT


# ------------------------------------------------------------------------------------------------
# The allowlist
# ------------------------------------------------------------------------------------------------
def _numpy_globals() -> List[Tuple[Any, str]]:
    """numpy arrays, dtypes and scalars, under the names numpy 1.x and 2.x pickle them with."""
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy(._)core.multiarray._reconstruct
    scalar = np.float64(0).__reduce__()[0]  # numpy(._)core.multiarray.scalar
    entries = [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    for core in ('numpy.core', 'numpy._core'):
        entries += [(reconstruct, f'{core}.multiarray._reconstruct'),
                    (scalar, f'{core}.multiarray.scalar')]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25: one class per dtype
    for name in dir(dtypes) if dtypes is not None else ():
        if name.endswith('DType'):
            entries.append((getattr(dtypes, name), f'numpy.dtypes.{name}'))
    return entries


def checkpoint_globals() -> List[Tuple[Any, str]]:
    """The globals allowed on top of torch's own: what MMEngine checkpoints are made of.

    Returns:
        list[tuple]: ``(object, 'module.name')`` entries for
        :func:`torch.serialization.safe_globals`.
    """
    return _numpy_globals() + [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_checkpoint_getattr, 'builtins.getattr'),
        (_GETATTR_RESULT, f'{__name__}.{_GETATTR_RESULT.__qualname__}'),
    ]


@contextmanager
def _allowed(entries: List[Tuple[Any, str]]) -> Iterator[None]:
    """Allow ``entries`` in ``torch.load(weights_only=True)`` inside the block only.

    Entries the user already allowed process-wide are left out, so the block's exit keeps them.
    """
    present = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([e for e in entries if e not in present]):
        yield


# ------------------------------------------------------------------------------------------------
# Listing a file's globals without executing it
# ------------------------------------------------------------------------------------------------
def _torch_name(module: str, name: str) -> str:
    """``module.name`` as torch's unpickler looks it up (Python 2 names mapped)."""
    from torch._utils import IMPORT_MAPPING, NAME_MAPPING
    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f'{module}.{name}'


def _legacy_file_globals(filename: str) -> Set[str]:
    """The ``GLOBAL`` names of a pre-1.6 (non-zip) ``torch.save`` file, by an opcode scan.

    Such a file is a sequence of pickles (magic number, protocol, system info, the object,
    storage keys) followed by raw storage bytes; the first four are scanned.
    """
    names = set()
    with open(filename, 'rb') as f:
        for _ in range(4):
            for opcode, arg, _ in pickletools.genops(f):
                if opcode.name == 'GLOBAL':
                    names.add(_torch_name(*arg.split(' ', 1)))
    return names


def _torch_default_globals() -> Set[str]:
    # Only used to skip stand-ins that torch's own allowlist would shadow anyway (it is looked
    # up first), so a missing private helper changes nothing but the number of stand-ins.
    try:
        from torch._weights_only_unpickler import _get_allowed_globals
        return set(_get_allowed_globals())
    except ImportError:  # pragma: no cover - depends on the torch version
        return set()


def foreign_globals(filename: str, zip_format: bool) -> List[str]:
    """The globals of ``filename`` that neither torch nor :func:`checkpoint_globals` allow.

    Args:
        filename (str): A ``torch.save`` file.
        zip_format (bool): Whether it is a zip archive (torch >= 1.6) or the legacy format.

    Returns:
        list[str]: Sorted ``module.name`` strings; nothing of them is imported.
    """
    with _allowed(checkpoint_globals()):
        if zip_format:
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(filename))
        known = _torch_default_globals() | {name for _, name in checkpoint_globals()}
        return sorted(_legacy_file_globals(filename) - known)


# ------------------------------------------------------------------------------------------------
# Trust
# ------------------------------------------------------------------------------------------------
class trust_checkpoint:
    """Allow full unpickling (``torch.load(weights_only=False)``) of one file the user trusts.

    Full unpickling can run any code the file contains: only trust files of a source you trust
    as much as the code you run. Everything else stays on the safe path. Used as a plain call it
    trusts the file for the rest of the process; as a context manager, inside the block only::

        glmix_mm.trust_checkpoint('checkpoints/my_own_run.pth')
        with glmix_mm.trust_checkpoint('checkpoints/other.pth'):
            runner.load_checkpoint('checkpoints/other.pth')

    The environment variable ``GLMIX_MM_TRUSTED_CHECKPOINTS`` (file paths separated by
    ``os.pathsep``) does the same. Paths are compared after resolving symbolic links; a
    directory is not accepted: each file is named.

    Args:
        filename (str): Path of an existing checkpoint file.
    """

    def __init__(self, filename: str) -> None:
        self.path = osp.realpath(osp.expanduser(filename))
        if osp.isdir(self.path):
            raise ValueError(f'trust_checkpoint: {filename!r} is a directory; name each trusted '
                             'file.')
        if not osp.isfile(self.path):
            raise FileNotFoundError(f'trust_checkpoint: {filename!r} does not exist.')
        self._added = self.path not in _trusted_files
        _trusted_files.add(self.path)

    def __enter__(self) -> 'trust_checkpoint':
        return self

    def __exit__(self, *exc_info) -> None:
        if self._added:
            _trusted_files.discard(self.path)


def is_trusted(filename: str) -> bool:
    """Whether the user trusts ``filename`` (:class:`trust_checkpoint` or ``$TRUSTED_ENV``)."""
    path = osp.realpath(osp.expanduser(filename))
    listed = (osp.realpath(osp.expanduser(p))
              for p in os.environ.get(TRUSTED_ENV, '').split(os.pathsep) if p)
    return path in _trusted_files or path in listed


def opt_in_hint(filename: str) -> str:
    """How to trust ``filename``, for error messages."""
    return (f'If you trust this file, allow full unpickling for it alone: '
            f'{TRUSTED_ENV}={shlex.quote(osp.realpath(filename))} or '
            f'glmix_mm.trust_checkpoint({filename!r}).')


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def _looks_crafted(global_name: str) -> bool:
    module, _, name = global_name.rpartition('.')
    if module == 'builtins':
        return name not in _DATA_BUILTINS
    return module.split('.')[0] in _CODE_MODULES + BLOCKED_MODULES


def _weights_only_reason(error: Exception) -> str:
    """The useful sentence of a ``weights_only`` error, without torch's advice to allowlist."""
    message = str(error)
    message = message.split('WeightsUnpickler error:')[-1].strip()
    for cut in (' Please use `torch.serialization', '\n\nCheck the documentation'):
        message = message.split(cut)[0]
    return ' '.join(message.split()) or type(error).__name__


def safe_torch_load(filename: str, map_location=None, zip_format: bool = True) -> Any:
    """``torch.load(weights_only=True)`` that also reads MMEngine state and foreign objects.

    Args:
        filename (str): A ``torch.save`` file.
        map_location: Same as :func:`torch.load`.
        zip_format (bool): Whether the file is a zip archive (else the legacy format).

    Returns:
        The loaded object; foreign objects come as :class:`InertObject`.

    Raises:
        UnsafeCheckpointError: The file cannot be read without running code from it.
        CheckpointLoadError: The file is truncated or corrupt.
    """
    if not hasattr(torch.serialization, 'get_unsafe_globals_in_checkpoint'):
        raise CheckpointLoadError(f'{filename}: reading checkpoints safely needs PyTorch >= 2.5 '
                                  f'(found {torch.__version__}); upgrade torch.')
    with _load_lock:
        try:
            foreign = foreign_globals(filename, zip_format)
        except pickle.UnpicklingError as error:  # opcodes of a pickle protocol > 2
            raise UnsafeCheckpointError(
                f'{filename}: cannot be read safely ({_weights_only_reason(error)}). '
                f'{opt_in_hint(filename)}') from None
        except ValueError as error:
            if 'torchscript' in str(error).lower():
                raise CheckpointLoadError(
                    f'{filename}: is a TorchScript archive, not a checkpoint; load it with '
                    'torch.jit.load and save its state_dict().') from None
            raise _corrupt(filename, error) from None
        except (RuntimeError, EOFError, OSError) as error:
            raise _corrupt(filename, error) from None
        blocked = [g for g in foreign if g.rpartition('.')[0] in BLOCKED_MODULES]
        if blocked or len(foreign) > MAX_FOREIGN_GLOBALS:
            what = (f'loading it would call {", ".join(blocked)}, i.e. run code' if blocked
                    else f'it names {len(foreign)} foreign classes or functions')
            raise UnsafeCheckpointError(f'{filename}: refused: {what}. {opt_in_hint(filename)}')
        if foreign:
            crafted = [g for g in foreign if _looks_crafted(g)]
            print_log(
                f'{filename}: read objects of {len(foreign)} classes or functions outside '
                f'glmix_mm\'s allowlist as inert records, without importing or calling them: '
                f'{", ".join(foreign)}' +
                (f'. The file looks crafted to run code ({", ".join(crafted)}); nothing ran.'
                 if crafted else ''),
                logger='current', level=30 if crafted else 20)
        with _allowed(checkpoint_globals() + [(inert_class(g), g) for g in foreign]):
            try:
                return torch.load(filename, map_location=map_location, weights_only=True)
            except pickle.UnpicklingError as error:
                raise UnsafeCheckpointError(
                    f'{filename}: cannot be read safely: {_weights_only_reason(error)}. '
                    f'{opt_in_hint(filename)}') from None
            except (RuntimeError, EOFError, ValueError, OSError) as error:
                raise _corrupt(filename, error) from None


def _corrupt(filename: str, error: Exception) -> CheckpointLoadError:
    reason = first_sentence(error)
    return CheckpointLoadError(f'{filename}: truncated or corrupt checkpoint ({reason}); '
                               'download or copy it again.')


def first_sentence(error: Exception) -> str:
    """The first sentence of an error message (torch's zip errors go on for a paragraph)."""
    message = ' '.join(str(error).split())
    return message.split('. ')[0].rstrip('.') or type(error).__name__


def full_torch_load(filename: str, map_location=None) -> Any:
    """``torch.load(weights_only=False)`` for a file :func:`is_trusted` accepted."""
    print_log(f'{filename}: trusted by the user, loaded with full unpickling.', logger='current')
    return torch.load(filename, map_location=map_location, weights_only=False)


__all__ = ['CheckpointLoadError', 'UnsafeCheckpointError', 'InertObject', 'inert_class',
           'checkpoint_globals', 'foreign_globals', 'trust_checkpoint', 'is_trusted',
           'safe_torch_load', 'full_torch_load', 'TRUSTED_ENV']
