"""What a data generator (``tools/make_demo_data.py``, ``tools/make_pretrain_data.py``) wrote
into its output folder, recorded in a manifest so that a later run replaces exactly those files
and refuses a folder holding files of someone else."""
import json
import os
import os.path as osp
from typing import List, Set, Tuple

from glmix_mm.errors import UsageError

MANIFEST = '.make_demo_data.json'
#: The folders ``tools/make_demo_data.py`` writes into (COCO, ADE20K and ImageNet style).
DEMO_SUBTREES = ('coco', 'ade', 'imagenet')


def files_in_subtrees(out: str, subtrees: Tuple[str, ...] = DEMO_SUBTREES) -> Set[str]:
    """Every file below the folders a generator writes into, relative to ``out``."""
    found = set()
    for subtree in subtrees:
        for folder, _, names in os.walk(osp.join(out, subtree)):
            found.update(osp.relpath(osp.join(folder, n), out) for n in names)
    return found


def read_manifest(out: str, subtrees: Tuple[str, ...]) -> Set[str]:
    path = osp.join(out, MANIFEST)
    if not osp.isfile(path):
        return set()
    with open(path) as f:
        files = json.load(f)['files']
    # Only plain relative paths inside the subtrees: a hand-edited list cannot reach elsewhere.
    return {f for f in files if not osp.isabs(f) and '..' not in f.split('/') and
            f.split('/')[0] in subtrees}


def write_manifest(out: str, files: Set[str]) -> None:
    os.makedirs(out, exist_ok=True)
    tmp = osp.join(out, MANIFEST + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(dict(files=sorted(files)), f, indent=0)
    os.replace(tmp, osp.join(out, MANIFEST))


def clear_previous_output(out: str, planned: List[str], subtrees: Tuple[str, ...],
                          tool: str) -> None:
    """Remove the files an earlier run wrote into ``out`` (and folders left empty), after
    recording ``planned`` too, so that an interrupted run is cleared next time as well.

    Args:
        out (str): The output folder.
        planned (list[str]): The files (relative to ``out``) this run will write.
        subtrees (tuple[str]): The folders below ``out`` the generator writes into.
        tool (str): The generator's name, for the error message.

    Raises:
        UsageError: ``out`` holds files in the generator's folders that it did not write
            (nothing is removed then).
    """
    previous = read_manifest(out, subtrees)
    foreign = sorted(files_in_subtrees(out, subtrees) - previous)
    if foreign:
        raise UsageError(
            f'{out} holds {len(foreign)} file(s) in {"/, ".join(subtrees)}/ that '
            f'{tool} did not write (e.g. {foreign[0]}), which would mix into the '
            'generated datasets; give a new or empty --out folder, or remove them.')
    write_manifest(out, previous | set(planned))
    for name in previous:
        path = osp.join(out, name)
        if osp.isfile(path):
            os.remove(path)
    for subtree in subtrees:
        for folder, _, _ in sorted(os.walk(osp.join(out, subtree)), reverse=True):
            if not os.listdir(folder):
                os.rmdir(folder)
