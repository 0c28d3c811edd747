"""Unpickling checkpoints without running code from them, the same way on every torch version.

A ``torch.save`` file is a pickle, and unpickling runs code only through the globals it names:
the classes and functions the unpickler looks up (``find_class``) and then calls or builds.
:func:`safe_torch_load` hands :func:`torch.load` a pickle module of its own
(``pickle_module=``, which every supported torch accepts) whose unpickler resolves a global to:

* the object itself, for an allowlist (:func:`checkpoint_globals`): what torch needs to rebuild
  tensors (its rebuild functions, dtypes, sizes, devices, storages), ``OrderedDict`` and the
  objects MMEngine training checkpoints carry: the message hub's ``HistoryBuffer`` (and the
  ``getattr(HistoryBuffer, 'min')``-style references to its statistics methods), numpy arrays,
  dtypes and scalars (the random states of ``RNGStateHook`` and the logged values);
* an inert stand-in class, for every other global (hydra's OmegaConf ``DictConfig``, argparse
  ``Namespace``, any unknown class or function): nothing of it is imported, and "calling" a
  stand-in only records its arguments (:class:`InertObject`). So upstream training checkpoints
  load on a default install, and the ``__reduce__`` payload of a crafted file is read as data;
* a refusal, for the modules no honest checkpoint names (``os``, ``sys``: :data:`BLOCKED_MODULES`).

Nothing process-wide changes (torch's own ``weights_only`` allowlist is left alone), so loads in
several threads do not interfere. Full unpickling (``weights_only=False`` with Python's pickle)
is only used for files the user trusts explicitly, by path: :class:`trust_checkpoint` or the
``GLMIX_MM_TRUSTED_CHECKPOINTS`` environment variable.
"""
import _compat_pickle
import copyreg
import os
import os.path as osp
import pickle
import shlex
import types
import zipfile
from copy import deepcopy
from typing import Any, Dict, List, Set, Tuple

import codecs
import collections

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

from glmix_mm.errors import GLMixMMError

TRUSTED_ENV = 'GLMIX_MM_TRUSTED_CHECKPOINTS'
# Modules no honest checkpoint names: a file that does is refused rather than read as records.
BLOCKED_MODULES = ('os', 'posix', 'nt', 'sys')
# Stand-ins are created per distinct name; a file naming more than this is refused.
MAX_FOREIGN_GLOBALS = 1000
# Foreign names that no data class has: a file naming one was most likely crafted to run code.
_CODE_MODULES = ('subprocess', 'shutil', 'importlib', 'runpy', 'pickle', 'marshal', 'ctypes',
                 'socket', 'code', 'pty', 'webbrowser', 'multiprocessing', 'signal')
_DATA_BUILTINS = ('dict', 'list', 'tuple', 'set', 'frozenset', 'int', 'float', 'str', 'bytes',
                  'bool', 'complex', 'slice', 'range', 'object', 'type', 'NoneType')

_trusted_files: Set[str] = set()


class CheckpointLoadError(GLMixMMError, RuntimeError):
    """A checkpoint file cannot be read (empty, truncated, not a checkpoint...)."""


class CheckpointNotFoundError(CheckpointLoadError, FileNotFoundError):
    """A checkpoint file that does not exist (exit code 2: fix the path)."""
    exit_code = 2


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


def _torch_globals() -> List[Tuple[Any, str]]:
    """What torch needs to rebuild tensors: the same kinds of objects as its own ``weights_only``
    allowlist (rebuild functions, dtypes, quantization schemes, sizes, devices, tensor and storage
    classes), found through public attributes where there are any."""
    entries = [(collections.OrderedDict, 'collections.OrderedDict'),
               (collections.Counter, 'collections.Counter'),
               (torch.nn.Parameter, 'torch.nn.parameter.Parameter'),
               (torch.serialization._get_layout, 'torch.serialization._get_layout'),
               (torch.Size, 'torch.Size'), (torch.Tensor, 'torch.Tensor'),
               (torch.device, 'torch.device'), (codecs.encode, '_codecs.encode'),
               (bytearray, 'builtins.bytearray'), (set, 'builtins.set'),
               (complex, 'builtins.complex'),
               (torch._tensor._rebuild_from_type_v2, 'torch._tensor._rebuild_from_type_v2')]
    for name, value in vars(torch._utils).items():
        if name.startswith('_rebuild_') and callable(value):
            entries.append((value, f'torch._utils.{name}'))
    for value in vars(torch).values():
        if isinstance(value, (torch.dtype, torch.qscheme)):
            entries.append((value, str(value)))
    for cls in (*getattr(torch, '_tensor_classes', ()), torch.storage.TypedStorage,
                torch.storage.UntypedStorage):
        entries.append((cls, f'{cls.__module__}.{cls.__name__}'))
    return entries


def checkpoint_globals() -> List[Tuple[Any, str]]:
    """The globals a checkpoint may name and get as they are (see the module docstring).

    Returns:
        list[tuple]: ``(object, 'module.name')`` entries.
    """
    return _torch_globals() + _numpy_globals() + [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_checkpoint_getattr, 'builtins.getattr'),
    ]


def _python3_name(module: str, name: str) -> Tuple[str, str]:
    """``(module, name)`` as Python 3 has it: ``torch.save`` writes pickle protocol 2, in which
    Python 3 names some globals by their Python 2 names (``__builtin__.set``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _Reading:
    """What one load allows and what it met: the allowlist, and the foreign globals read as
    stand-ins (:meth:`resolve` is the unpickler's ``find_class``).

    Args:
        filename (str): The file, for messages.
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.allowed = {name: obj for obj, name in checkpoint_globals()}
        self.foreign: Dict[str, None] = {}  # in order of appearance

    def resolve(self, module: str, name: str) -> Any:
        module, name = _python3_name(module, name)
        global_name = f'{module}.{name}'
        if global_name in self.allowed:
            return self.allowed[global_name]
        if module.split('.')[0] in BLOCKED_MODULES:
            raise UnsafeCheckpointError(
                f'{self.filename}: refused: loading it would call {global_name}, i.e. run code. '
                f'{opt_in_hint(self.filename)}')
        self.foreign[global_name] = None
        if len(self.foreign) > MAX_FOREIGN_GLOBALS:
            raise UnsafeCheckpointError(
                f'{self.filename}: refused: it names more than {MAX_FOREIGN_GLOBALS} foreign '
                f'classes or functions. {opt_in_hint(self.filename)}')
        return inert_class(global_name)

    def pickle_module(self) -> types.ModuleType:
        """A module with pickle's interface (``Unpickler``, ``load``) whose unpickler looks
        globals up through :meth:`resolve`, for ``torch.load(pickle_module=...)``."""
        resolve = self.resolve

        class Unpickler(pickle.Unpickler):

            def find_class(self, module: str, name: str) -> Any:
                return resolve(module, name)

        module = types.ModuleType(f'{__name__}.restricted_pickle')
        module.Unpickler = Unpickler
        module.load = lambda file, **kwargs: Unpickler(file, **kwargs).load()
        module.UnpicklingError = pickle.UnpicklingError
        return module


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


def _is_torchscript(filename: str) -> bool:
    """Whether the zip archive ``filename`` is a TorchScript module (``torch.jit.save``), which
    ``torch.load`` would hand to ``torch.jit.load`` instead of unpickling."""
    try:
        with zipfile.ZipFile(filename) as archive:
            return any(n.endswith('/constants.pkl') for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _log_foreign(filename: str, foreign: List[str]) -> None:
    crafted = [g for g in foreign if _looks_crafted(g)]
    print_log(
        f'{filename}: read objects of {len(foreign)} classes or functions outside glmix_mm\'s '
        f'allowlist as inert records, without importing or calling them: {", ".join(foreign)}' +
        (f'. The file looks crafted to run code ({", ".join(crafted)}); nothing ran.'
         if crafted else ''), logger='current', level=30 if crafted else 20)


def restricted_load(filename: str, map_location=None) -> Tuple[Any, List[str]]:
    """``torch.load`` through the restricted unpickler of the module docstring.

    Returns:
        tuple: The loaded object, and the foreign globals read as stand-ins (in order).

    Raises:
        UnsafeCheckpointError: The file names a blocked module or too many foreign globals, or
            builds an object a stand-in cannot take (e.g. items of a dict subclass).
        CheckpointLoadError: The file is truncated or corrupt, or a TorchScript archive.
    """
    if _is_torchscript(filename):
        raise CheckpointLoadError(
            f'{filename}: is a TorchScript archive, not a checkpoint; load it with '
            'torch.jit.load and save its state_dict().')
    reading = _Reading(filename)
    try:
        checkpoint = torch.load(filename, map_location=map_location,
                                pickle_module=reading.pickle_module(), weights_only=False)
    except UnsafeCheckpointError:
        raise
    except (TypeError, AttributeError) as error:  # a stand-in asked to act as a real object
        foreign = ', '.join(reading.foreign) or 'its objects'
        raise UnsafeCheckpointError(
            f'{filename}: cannot be read safely: {foreign} cannot be read as inert records '
            f'({first_sentence(error)}). {opt_in_hint(filename)}') from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, KeyError,
            IndexError) as error:
        raise _corrupt(filename, error) from None
    return checkpoint, list(reading.foreign)


def safe_torch_load(filename: str, map_location=None) -> Any:
    """Load a ``torch.save`` file without running code from it (see the module docstring);
    foreign objects are logged and come as :class:`InertObject`.

    Args:
        filename (str): A ``torch.save`` file (zip or legacy format).
        map_location: Same as :func:`torch.load`.

    Raises:
        UnsafeCheckpointError: The file cannot be read without running code from it.
        CheckpointLoadError: The file is truncated or corrupt.
    """
    checkpoint, foreign = restricted_load(filename, map_location)
    if foreign:
        _log_foreign(filename, foreign)
    return checkpoint


def foreign_globals(filename: str) -> List[str]:
    """The globals of the ``torch.save`` file ``filename`` outside :func:`checkpoint_globals`,
    sorted (read by a restricted load: nothing of them is imported or called)."""
    return sorted(restricted_load(filename, 'cpu')[1])


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


__all__ = [
    'CheckpointLoadError', 'UnsafeCheckpointError', 'InertObject', 'inert_class',
    'checkpoint_globals', 'foreign_globals', 'restricted_load', 'trust_checkpoint', 'is_trusted',
    'safe_torch_load', 'full_torch_load', 'TRUSTED_ENV'
]
