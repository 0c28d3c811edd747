"""The documentation keeps its promises: what README.md and docs/*.md name exists and works.

* every script named as ``tools/...`` exists; a Python script answers ``--help`` with exit status
  0, a shell script passes ``bash -n``;
* every config named as ``configs/....py`` exists and loads; a full config (not a ``_base_``
  fragment, not an MMDeploy deploy config) builds its model through its scope's registry, with
  the input channels its neck or head expects from the backbone;
* every config snippet (a python block with a ``_base_``) builds its model, channels matching;
* every relative link points to a file that exists, and to a heading of it where it names one;
* every repository path the pages name (``glmix_mm/...``, ``tests/...``, ``dev/...``, a
  module path relative to the package such as ``engine/loops.py``) exists, and every dotted
  ``glmix_mm.x.y`` name imports;
* the README is a front page that links to every page of docs/.

Brace groups expand as in the shell: ``configs/maskrcnn_glnet_{stl,4g}_coco.py`` names two.
"""
import contextlib
import glob
import importlib
import io
import os.path as osp
import re
import subprocess
from dataclasses import dataclass
from typing import Dict, List

import pytest
from helpers import ROOT, backbone_out_channels, decoder_in_channels, run_script
from mmengine.config import Config

from glmix_mm.runner import build_model_from_cfg

PAGES = ['README.md'] + sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md')))
TEXTS: Dict[str, str] = {}
for _page in PAGES:
    with open(osp.join(ROOT, _page), encoding='utf-8') as _f:
        TEXTS[_page] = _f.read()

# A repository path starts the token: not part of a longer path (``mmdeploy/tools/...``) or
# name. Placeholders such as ``configs/glnet_<arch>_in1k.py`` or ``maskrcnn_glnet_*`` do not match.
SCRIPT_RE = re.compile(r'(?<![\w./-])tools/[\w./-]*?\.(?:py|sh)\b')
CONFIG_RE = re.compile(r'(?<![\w./-])configs/[\w./{},-]*?\.py\b')
LINK_RE = re.compile(r'\]\(([^)\s]+)\)')
SNIPPET_RE = re.compile(r'^```python\n(.*?)^```', re.MULTILINE | re.DOTALL)
# Config folders whose files are not whole model configs.
PARTIAL_CONFIG_DIRS = ('configs/_base_/', 'configs/deploy/')
README_MAX_LINES = 200


def expand_braces(text: str) -> List[str]:
    """``a{b,c}d{e,f}`` -> ``['abde', 'abdf', 'acde', 'acdf']`` (no nesting)."""
    match = re.search(r'\{([^{}]*)\}', text)
    if match is None:
        return [text]
    head, tail = text[:match.start()], text[match.end():]
    return [name for option in match.group(1).split(',')
            for name in expand_braces(head + option + tail)]


def named(pattern: re.Pattern) -> Dict[str, List[str]]:
    """Every path the pages name, with the pages naming it."""
    found: Dict[str, List[str]] = {}
    for page, text in TEXTS.items():
        for token in pattern.findall(text):
            for path in expand_braces(token):
                pages = found.setdefault(path, [])
                if page not in pages:
                    pages.append(page)
    return dict(sorted(found.items()))


SCRIPTS = named(SCRIPT_RE)
CONFIGS = named(CONFIG_RE)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(text: str) -> List[str]:
    """Anchors of the headings of a page (outside code blocks), numbered as GitHub numbers
    repeated ones."""
    seen: Dict[str, int] = {}
    result = []
    in_code = False
    for line in text.splitlines():
        if line.startswith('```'):
            in_code = not in_code
            continue
        heading = re.match(r'#{1,6} (.*)', line)
        if heading and not in_code:
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            result.append(anchor if count == 0 else f'{anchor}-{count}')
    return result


# Paths from the repository root; and paths the pages give relative to the package (a
# subpackage first, ``hooks/`` being ``engine/hooks/``), in backquotes.
REPO_PATH_RE = re.compile(
    r'(?<![\w./~:-])(?:\.ci|configs|dev|docs|glmix_mm|tests|tools)/[\w./{},-]*')
PACKAGE_PATH_RE = re.compile(
    r'`((?:analysis|checkpoint|deploy|engine|hooks|models|runner|utils)/[\w./-]*)`')
DOTTED_RE = re.compile(r'`(glmix_mm(?:\.\w+)+)')
PACKAGE_DIRS = {'hooks': 'glmix_mm/engine/hooks'}  # else glmix_mm/<subpackage>
# Paths in the upstream GLNet repository that backbones.md and classification.md name: not ours.
UPSTREAM_PATHS = {'models/glnet_tklb.py', 'configs/main_cx2.yaml'}


def named_paths() -> Dict[str, List[str]]:
    """Every repository path the pages name, as a path from the root, with the pages naming it."""
    found: Dict[str, List[str]] = {}

    def add(path: str, page: str) -> None:
        path = path.rstrip('.,:;')
        if path in UPSTREAM_PATHS:
            return
        pages = found.setdefault(path, [])
        if page not in pages:
            pages.append(page)

    for page, text in TEXTS.items():
        for match in REPO_PATH_RE.finditer(text):
            if text[match.end():match.end() + 1] in '<*':  # a placeholder: configs/glnet_<arch>
                continue
            for path in expand_braces(match.group(0)):
                add(path, page)
        for path in PACKAGE_PATH_RE.findall(text):
            head, _, rest = path.partition('/')
            if path not in UPSTREAM_PATHS:
                add(f"{PACKAGE_DIRS.get(head, 'glmix_mm/' + head)}/{rest}", page)
    return dict(sorted(found.items()))


PATHS = named_paths()
DOTTED = sorted({name for text in TEXTS.values() for name in DOTTED_RE.findall(text)})


def test_the_pages_name_repository_paths():
    assert {'glmix_mm/compat.py', 'tests/test_models/test_reference_outputs.py',
            'glmix_mm/models/glmix.py', 'glmix_mm/engine/loops.py'} <= set(PATHS)
    assert {'glmix_mm.compat.require_torch', 'glmix_mm.models.GLNet'} <= set(DOTTED)


def test_named_repository_paths_exist():
    missing = [f'{path} (named in {", ".join(pages)})' for path, pages in PATHS.items()
               if not osp.exists(osp.join(ROOT, path))]
    assert not missing, 'the docs name paths that do not exist: ' + '; '.join(missing)


def resolve(name: str) -> object:
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = name.split('.')
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


@pytest.mark.parametrize('name', DOTTED)
def test_named_dotted_name_resolves(name):
    try:
        resolve(name)
    except (ImportError, AttributeError) as error:
        pytest.fail(f'{name}, named in the docs, does not resolve: {error}')


def test_the_pages_name_scripts_and_configs():
    """The patterns find what the pages name (an empty search would make the tests vacuous)."""
    assert {'tools/train.py', 'tools/test.py', 'tools/analysis/benchmark.py',
            'tools/model_converters/glnet2mm.py', 'tools/dist_train.sh'} <= set(SCRIPTS)
    assert {'configs/maskrcnn_glnet_4g_coco.py', 'configs/maskrcnn_glnet_16g_coco.py',
            'configs/demo/maskrcnn_glnet_4g_demo.py', 'configs/glnet_4g_in1k.py',
            'configs/upernet_conformer_b_ade20k.py'} <= set(CONFIGS)
    assert expand_braces('configs/x_{a,b}_{c,d}.py') == [
        'configs/x_a_c.py', 'configs/x_a_d.py', 'configs/x_b_c.py', 'configs/x_b_d.py']
    assert SCRIPT_RE.findall('MMDeploy\'s mmdeploy/tools/deploy.py, glmix_mm/tools/x.py') == []


@dataclass
class ScriptRun:
    command: str
    returncode: int
    output: str


def check_script(script: str) -> ScriptRun:
    """A shell script through ``bash -n``; a Python script with ``--help``, in this process
    (as ``python SCRIPT --help`` would run it, without paying the imports of torch and the
    OpenMMLab libraries once per script)."""
    path = osp.join(ROOT, script)
    if script.endswith('.sh'):
        result = subprocess.run(['bash', '-n', path], capture_output=True, text=True,
                                timeout=60)
        return ScriptRun(f'bash -n {script}', result.returncode, result.stdout + result.stderr)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = run_script(script, '--help')
    return ScriptRun(f'python {script} --help', code, out.getvalue())


@pytest.mark.parametrize('script', list(SCRIPTS))
def test_named_script_exists_and_answers_help(script):
    assert osp.isfile(osp.join(ROOT, script)), \
        f'{script}, named in {SCRIPTS[script]}, does not exist'
    result = check_script(script)
    assert result.returncode == 0, \
        f'{result.command} exited {result.returncode}:\n{result.output[-4000:]}'
    if script.endswith('.py'):
        assert 'usage:' in result.output, result.output[-2000:]


@pytest.mark.parametrize('config', list(CONFIGS))
def test_named_config_exists_and_builds(config):
    path = osp.join(ROOT, config)
    assert osp.isfile(path), f'{config}, named in {CONFIGS[config]}, does not exist'
    cfg = Config.fromfile(path)
    if config.startswith(PARTIAL_CONFIG_DIRS):
        assert len(cfg.keys()) > 0, f'{config} defines nothing'
        return
    assert 'model' in cfg, f'{config} defines no model'
    model = build_model_from_cfg(cfg)
    assert decoder_in_channels(cfg) == backbone_out_channels(model.backbone)


SNIPPETS = [(page, i, code) for page in PAGES
            for i, code in enumerate(SNIPPET_RE.findall(TEXTS[page])) if '_base_ =' in code]


def test_the_pages_have_config_snippets():
    assert sum(page == 'README.md' for page, _, _ in SNIPPETS) >= 2  # GLNet and Conformer


@pytest.mark.parametrize('page,index,code', SNIPPETS,
                         ids=[f'{page}:{i}' for page, i, _ in SNIPPETS])
def test_config_snippet_builds(page, index, code, tmp_path):
    path = tmp_path / 'snippet.py'
    path.write_text(code)
    cfg = Config.fromfile(str(path))
    model = build_model_from_cfg(cfg)
    assert decoder_in_channels(cfg) == backbone_out_channels(model.backbone)


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK_RE.findall(TEXTS[page]):
        if re.match(r'[a-z]+:', target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition('#')
        file_path = osp.normpath(osp.join(ROOT, osp.dirname(page), file_part))
        if file_part and not osp.exists(file_path):
            broken.append(f'{target}: no file {osp.relpath(file_path, ROOT)}')
            continue
        if anchor and file_path.endswith('.md'):
            with open(file_path, encoding='utf-8') as f:
                if anchor not in anchors(f.read()):
                    broken.append(f'{target}: no heading #{anchor}')
    assert not broken, f'{page}: ' + '; '.join(broken)


def test_readme_is_a_front_page_linking_every_docs_page():
    readme = TEXTS['README.md']
    assert len(readme.splitlines()) <= README_MAX_LINES
    linked = {link.partition('#')[0] for link in LINK_RE.findall(readme)}
    unlinked = [page for page in PAGES[1:] if page not in linked]
    assert not unlinked, f'README.md does not link {unlinked}'


def test_make_targets_named_exist():
    with open(osp.join(ROOT, 'Makefile'), encoding='utf-8') as f:
        rules = re.findall(r'^([\w][\w -]*):(?!=)', f.read(), re.MULTILINE)
    targets = {target for rule in rules for target in rule.split()}  # `a b: %: ...` too
    named_targets = {t for text in TEXTS.values() for t in re.findall(r'`make ([\w-]+)', text)}
    assert {'demo', 'test'} <= named_targets
    assert named_targets <= targets, f'not in the Makefile: {named_targets - targets}'


def test_the_newest_release_in_the_changelog_is_the_package_version():
    """CHANGELOG.md's first released section (``## [X.Y.Z] - date``, after ``[Unreleased]``)
    is ``glmix_mm.__version__`` (glmix_mm/version.py, which setup.py reads)."""
    import glmix_mm
    with open(osp.join(ROOT, 'CHANGELOG.md'), encoding='utf-8') as f:
        released = re.findall(r'^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$', f.read(), re.M)
    assert released and released[0] == glmix_mm.__version__, (released[:1], glmix_mm.__version__)
