"""What ``--resume`` continues from: MMEngine's ``find_latest_checkpoint`` (the file that
``last_checkpoint`` names), checked for completeness, with the newest complete checkpoint of
the work dir as the fallback.

Checkpoint names, newest = largest position:

* ``epoch_N.pth`` (``CheckpointHook`` by epoch): N epochs done -> position ``(N, 0)``;
* ``epoch_E_iter_I.pth`` (saved at an interruption inside epoch E, 1-based, after I of its
  iterations; see :class:`~glmix_mm.engine.ResumableEpochBasedTrainLoop`) -> ``(E - 1, I)``;
* ``iter_N.pth`` (by iteration) -> ``(N, 0)``.
"""
import os
import os.path as osp
import re
import zipfile
from typing import Iterable, List, Optional, Tuple

from mmengine.logging import print_log
from mmengine.runner.checkpoint import find_latest_checkpoint

from glmix_mm.errors import GLMixMMError

from .mmengine_internals import cancel_resume, checkpoint_to_load, set_checkpoint_to_load

WARNING = 30
# The name of a checkpoint taken inside an epoch: 1-based epoch, iterations of it done.
MID_EPOCH_NAME = 'epoch_{}_iter_{}.pth'
_NAMES = re.compile(r'^(?:(epoch|iter)_(\d+)|epoch_(\d+)_iter_(\d+))\.pth$')


class ResumeError(GLMixMMError, RuntimeError):
    """``--resume FILE`` names a file that is missing or incomplete."""


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (not missing, not truncated).

    ``torch.save`` writes a zip archive whose directory is at the very end of the file, so a
    truncated file has no readable directory. This reads the directory only, not the tensors.
    """
    if not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def checkpoint_position(name: str) -> Optional[Tuple[int, int]]:
    """``(epochs or iterations done, iterations done in the epoch in progress)`` of a
    checkpoint file name (see the module docstring), or None for other names."""
    match = _NAMES.match(osp.basename(name))
    if match is None:
        return None
    if match.group(3) is not None:
        return int(match.group(3)) - 1, int(match.group(4))
    return int(match.group(2)), 0


def newest_complete_checkpoint(dirs: Iterable[str]) -> Optional[str]:
    """The newest complete periodic or mid-epoch checkpoint in ``dirs`` (largest position,
    then newest file), if any."""
    candidates: List[tuple] = []
    for folder in dict.fromkeys(d for d in dirs if d and osp.isdir(d)):
        for name in os.listdir(folder):
            position = checkpoint_position(name)
            if position is not None:
                path = osp.join(folder, name)
                candidates.append((position, osp.getmtime(path), path))
    for _, _, path in sorted(candidates, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None


def _named(work_dir: str) -> str:
    """The file ``last_checkpoint`` names (MMEngine's lookup), '' if none."""
    if not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        return ''  # find_latest_checkpoint would log that it found none; we say more below
    return find_latest_checkpoint(work_dir) or ''


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """What ``--resume`` continues from: the complete checkpoint ``last_checkpoint`` names, or
    else the newest complete checkpoint in ``work_dir``."""
    named = _named(work_dir)
    if named and is_complete_checkpoint(named):
        return named
    return newest_complete_checkpoint([work_dir, osp.dirname(named)])


def _describe(path: str) -> str:
    return 'does not exist' if not osp.isfile(path) else \
        'is incomplete (truncated by an interrupted write?)'


def check_resume_file(path: str, work_dir: str) -> None:
    """Check a checkpoint named to resume from (``--resume FILE``): complete, or a URL.

    Raises:
        ResumeError: It is missing or incomplete; the message names the newest complete
            checkpoint of ``work_dir`` and of its own folder, if there is one.
    """
    if is_complete_checkpoint(path) or '://' in path:
        return
    newest = newest_complete_checkpoint([work_dir, osp.dirname(path)])
    raise ResumeError(
        f'Cannot resume from {path}: the file {_describe(path)}.' +
        (f' The newest complete checkpoint is {newest}; pass it to --resume, or --resume '
         'without a file to take the newest one.' if newest else ''))


def resolve_resume(runner) -> None:
    """Point an auto-resuming runner (``resume=True``, ``load_from=None``) at the checkpoint to
    continue from; check an explicit one (:func:`check_resume_file`). Called before MMEngine
    loads it.

    Raises:
        ResumeError: An explicit ``load_from`` to resume from is missing or incomplete.
    """
    work_dir, path = runner.work_dir, checkpoint_to_load(runner)
    if path is not None:
        check_resume_file(path, work_dir)
        return
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = _named(work_dir)
    if named and is_complete_checkpoint(named):
        print_log(f'Resuming from {named} (named by {pointer}).', logger='current')
        set_checkpoint_to_load(runner, named)
        return
    newest = newest_complete_checkpoint([work_dir, osp.dirname(named)])
    reason = f'{pointer} names {named}, which {_describe(named)}' if named else \
        f'there is no {pointer}'
    if newest:
        print_log(f'--resume: {reason}; resuming from {newest}, the newest complete '
                  'checkpoint in the work dir.', logger='current', level=WARNING)
        set_checkpoint_to_load(runner, newest)
    else:
        print_log(f'--resume: {reason}, and the work dir holds no complete checkpoint: '
                  'training starts from the beginning.', logger='current', level=WARNING)
        cancel_resume(runner)
