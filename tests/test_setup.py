"""Installing glmix_mm into a user's environment keeps the user's torch and numpy.

glmix_mm's own requirements (``setup.py``'s ``install_requires`` as installed, and
``requirements.txt``) give torch, torchvision and numpy floors only, and in this environment pip,
asked to install the project as a user would, has nothing to install or replace.
"""
import json
import os.path as osp
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires, version
from typing import List

import pytest
from helpers import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# The oldest and the newest versions a user's environment may hold, each of which must be kept.
USER_STACKS = {'torch': ['2.1.2', '2.12.1', '99.0'], 'torchvision': ['0.16.2', '99.0'],
               'numpy': ['1.24.4', '1.26.4', '2.0.0', '99.0']}


def project_requirements() -> List[Requirement]:
    """glmix_mm's core requirements as installed, then ``requirements.txt``'s."""
    reqs = [Requirement(r) for r in requires('glmix_mm') or []]
    core = [r for r in reqs if r.marker is None or 'extra' not in str(r.marker)]
    with open(osp.join(ROOT, 'requirements.txt')) as f:
        lines = [line.split('#')[0].strip() for line in f]
    return core + [Requirement(line) for line in lines if line]


@pytest.mark.parametrize('name', sorted(USER_STACKS))
def test_torch_and_numpy_have_floors_only(name):
    specs = [r.specifier for r in project_requirements() if canonicalize_name(r.name) == name]
    for spec in specs:
        refused = [v for v in USER_STACKS[name] if not spec.contains(v)]
        assert not refused, f'{name}{spec} would replace a user\'s {name} {refused}'


def test_installed_versions_satisfy_every_requirement():
    for req in project_requirements():
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            pytest.fail(f'{req.name} is required but not installed (make setup)')
        assert req.specifier.contains(installed, prereleases=True), f'{req} vs {installed}'


@pytest.mark.slow
def test_pip_would_install_nothing_but_glmix_mm(tmp_path):
    """``pip install -r requirements.txt -e .`` as a dry run from installed packages only: the
    report lists glmix_mm alone (an index would let pip pick something new; without one it must
    find everything here)."""
    report = tmp_path / 'report.json'
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index', '--no-build-isolation',
         '--quiet', '--report', str(report), '-r', 'requirements.txt', '-e', '.'],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    installs = json.loads(report.read_text())['install']
    names = {canonicalize_name(item['metadata']['name']) for item in installs}
    assert names <= {'glmix-mm'}, f'pip would install or replace {sorted(names)}'
