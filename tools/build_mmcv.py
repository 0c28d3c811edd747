"""Build mmcv 2.1.0 with its C++ ops for this Python and this torch, once per machine.

Usage: ``python tools/build_mmcv.py`` prints the path of the wheel (``tools/setup_env.sh`` installs
it). The wheel is kept in ``$GLMIX_MM_CACHE/wheels/torch-<version>/`` (default
``~/.cache/glmix_mm``), named by pip for its Python and platform, so every stack on a machine
(Python 3.8 + torch 2.1.2, Python 3.11 and 3.13 + torch 2.12.1) gets an mmcv compiled against its
own torch and Python, and a new environment of the same stack reuses the build. pip's own wheel
cache cannot do this: it keys a built wheel by name and version, not by the torch it was compiled
against, and hands one torch the other's build (undefined symbols at ``import mmcv.ops``).

The source is the registry's sdist, checked against the index's sha256. On Python >= 3.13 one line
of its ``setup.py`` is changed before the build: mmcv 2.1.0 reads its version with ``exec()``
and then ``locals()['__version__']``, which fails there (``KeyError: '__version__'``), because
Python 3.13 (PEP 667) no longer lets ``exec`` add names to a function's ``locals()``. The version is
read into a dictionary instead; nothing else changes.
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional, Tuple

MMCV = '2.1.0'
SDIST = f'mmcv-{MMCV}.tar.gz'
VERSION_READ = "    return locals()['__version__']\n"
# The fix for Python >= 3.13: the version file is executed into a dictionary of its own.
VERSION_READ_FIXED = ("    namespace = {}\n"
                      "    with open(version_file, encoding='utf-8') as f:\n"
                      "        exec(compile(f.read(), version_file, 'exec'), namespace)\n"
                      "    return namespace['__version__']\n")


class BuildError(RuntimeError):
    """The build cannot go on; the message says why and what to do."""


def cache_root() -> Path:
    return Path(os.environ.get('GLMIX_MM_CACHE',
                               Path.home() / '.cache' / 'glmix_mm')).expanduser()


def wheel_dir(torch_version: str) -> Path:
    return cache_root() / 'wheels' / f'torch-{torch_version}'


def cached_wheel(directory: Path) -> Optional[Path]:
    """The wheel in ``directory`` built for this Python (``cp311``, ``cp313``, ...), if any."""
    tag = f'cp{sys.version_info[0]}{sys.version_info[1]}'
    found = sorted(directory.glob(f'mmcv-{MMCV}-{tag}-{tag}-*.whl'))
    return found[-1] if found else None


def index_url() -> str:
    """The package index pip uses (``PIP_INDEX_URL``, pip's configuration, else PyPI)."""
    url = os.environ.get('PIP_INDEX_URL')
    if not url:
        result = subprocess.run([sys.executable, '-m', 'pip', 'config', 'get', 'global.index-url'],
                                capture_output=True, text=True)
        url = result.stdout.strip() if result.returncode == 0 else ''
    return (url or 'https://pypi.org/simple').rstrip('/') + '/'


def sdist_link(index: str) -> Tuple[str, str]:
    """(url, sha256) of mmcv 2.1.0's sdist on the index's simple page (PEP 503)."""
    page_url = urllib.parse.urljoin(index, 'mmcv/')
    with urllib.request.urlopen(page_url, timeout=120) as page:
        html = page.read().decode('utf-8', 'replace')
    for href in re.findall(r'href="([^"]+)"', html):
        url, _, fragment = href.replace('&amp;', '&').partition('#')
        if url.rsplit('/', 1)[-1] == SDIST and fragment.startswith('sha256='):
            return urllib.parse.urljoin(page_url, url), fragment[len('sha256='):]
    raise BuildError(f'{SDIST} with a sha256 was not found on {page_url}; '
                     'set PIP_INDEX_URL to an index that has it.')


def fetch_sdist(directory: Path) -> Path:
    """The sdist, downloaded once into ``directory`` and checked against the index's sha256."""
    path = directory / SDIST
    if path.is_file():
        return path
    url, sha256 = sdist_link(index_url())
    with urllib.request.urlopen(url, timeout=600) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BuildError(f'{url} does not match the sha256 the index gives; not building it.')
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix('.part')
    partial.write_bytes(data)
    partial.replace(path)
    return path


def fix_version_read(setup_py: Path) -> None:
    """Apply the Python >= 3.13 fix (module docstring) to mmcv's ``setup.py``."""
    text = setup_py.read_text(encoding='utf-8')
    start = text.find('    with open(version_file')
    end = text.find(VERSION_READ, start)
    if start < 0 or end < 0:
        raise BuildError(f'{setup_py} does not read its version as mmcv {MMCV} does; '
                         'the Python 3.13 fix was not applied.')
    setup_py.write_text(text[:start] + VERSION_READ_FIXED + text[end + len(VERSION_READ):],
                        encoding='utf-8')


def build(torch_version: str) -> Path:
    out = wheel_dir(torch_version)
    wheel = cached_wheel(out)
    if wheel is not None:
        return wheel
    sdist = fetch_sdist(cache_root() / 'sdists')
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sdist) as archive:
            # tarfile's 'data' filter (Python >= 3.8.17) refuses links and paths out of tmp.
            safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
            archive.extractall(tmp, **safe)
        source = Path(tmp) / f'mmcv-{MMCV}'
        if sys.version_info >= (3, 13):
            fix_version_read(source / 'setup.py')
        env = dict(os.environ, MMCV_WITH_OPS='1', MAX_JOBS=os.environ.get('MAX_JOBS', '2'))
        subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps',
                        '--progress-bar', 'off', '-w', str(out), str(source)],
                       check=True, env=env, stdout=sys.stderr)
    wheel = cached_wheel(out)
    if wheel is None:
        raise BuildError(f'pip built no mmcv {MMCV} wheel for this Python into {out}.')
    return wheel


def main(argv=None) -> int:
    argparse.ArgumentParser(
        description='Build (once) and print the path of an mmcv 2.1.0 wheel with its C++ ops for '
        'this Python and torch (MAX_JOBS compiler processes, default 2; GLMIX_MM_CACHE: where '
        'wheels are kept).').parse_args(argv)
    try:
        import torch
    except ImportError:
        print('error: install torch first (mmcv compiles its ops against it)', file=sys.stderr)
        return 2
    try:
        print(build(torch.__version__))
    except (BuildError, OSError, subprocess.CalledProcessError) as error:
        print(f'error: building mmcv {MMCV}: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
