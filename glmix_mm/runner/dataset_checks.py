"""Whether a config's datasets are on disk and usable, checked before anything is built: a
missing or broken dataset gets one message that says where it must be and how to get it."""
import json
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from glmix_mm.errors import GLMixMMError

# Where each public dataset comes from, by dataset type, for the missing-data message.
DATASET_HELP = {
    'CocoDataset': ('COCO 2017', 'https://cocodataset.org/#download (train2017, val2017 and '
                    'annotations_trainval2017)', 'data/coco/{annotations,train2017,val2017}'),
    'ADE20KDataset': ('ADE20K (SceneParsing ADEChallengeData2016)',
                      'http://sceneparsing.csail.mit.edu/ (ADEChallengeData2016.zip)',
                      'data/ade/ADEChallengeData2016/{images,annotations}/{training,validation}'),
    'ImageNet': ('ImageNet-1k', 'https://image-net.org/download.php (ILSVRC2012 train/val)',
                 'data/imagenet/{train,val} and meta/{train,val}.txt'),
}
# Where tools/make_demo_data.py writes by default (the demo configs' data_root lies below it).
DEMO_DATA = 'data/demo'
# JSON annotation files up to this size are read in full by the checks (COCO val2017 is
# 25 MB; docs/reliability.md has the time); larger ones (COCO train2017: 448 MB) are only
# checked at both ends.
FULL_READ_BYTES = 64 * 2**20
# The evaluator whose ann_file belongs to each dataloader.
EVALUATORS = dict(val_dataloader='val_evaluator', test_dataloader='test_evaluator')


class DatasetNotFoundError(GLMixMMError, FileNotFoundError):
    """A config's dataset is not on disk; the message says where it must be and how to get it
    (exit code 2)."""
    exit_code = 2


class BadDatasetError(DatasetNotFoundError):
    """A config's dataset is on disk but unusable (an empty, truncated or non-JSON annotation
    file, images it lists missing, classes it lacks). A :class:`DatasetNotFoundError`, so that
    the tools report it in one message as well."""


def _dataset_cfgs(cfg: Config) -> Iterator[Tuple[str, str, ConfigDict]]:
    """``(loader, key of its innermost dataset, dataset config)`` for each dataloader."""
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if not loader:
            continue
        key, dataset = f'{name}.dataset', loader.get('dataset')
        while dataset is not None and 'dataset' in dataset:  # wrappers: RepeatDataset etc.
            key, dataset = f'{key}.dataset', dataset['dataset']
        if dataset is not None:
            yield name, key, dataset


def _paths(dataset: ConfigDict) -> List[str]:
    root = dataset.get('data_root', '') or ''
    paths = []
    if dataset.get('ann_file'):
        paths.append(osp.join(root, dataset['ann_file']))
    paths += list(_prefixes(dataset).values())
    return paths or ([root] if root else [])


def _prefixes(dataset: ConfigDict) -> Dict[str, str]:
    """The dataset's ``data_prefix`` entries joined to its ``data_root``."""
    root = dataset.get('data_root', '') or ''
    prefix = dataset.get('data_prefix', {}) or {}
    if isinstance(prefix, str):
        prefix = dict(img=prefix)
    return {k: osp.join(root, p) for k, p in prefix.items() if isinstance(p, str) and p}


def _evaluator_ann_files(cfg: Config, loader: str) -> List[Tuple[str, str]]:
    """``(config key, path)`` of the ``ann_file`` of the evaluator(s) of ``loader``."""
    name = EVALUATORS.get(loader)
    evaluator = cfg.get(name) if name else None
    if isinstance(evaluator, dict):
        evaluator = [evaluator]
        keys = [f'{name}.ann_file']
    elif isinstance(evaluator, (list, tuple)):
        keys = [f'{name}.{i}.ann_file' for i in range(len(evaluator))]
    else:
        return []
    return [(key, e['ann_file']) for key, e in zip(keys, evaluator)
            if isinstance(e, dict) and isinstance(e.get('ann_file'), str) and e['ann_file']]


def _fix_options(cfg: Config, missing_loaders: List[str]) -> str:
    """``--cfg-options`` that point every loader with missing data, and its evaluator, at a
    copy of the data (same layout below a new root)."""
    options = []
    for loader, key, dataset in _dataset_cfgs(cfg):
        if loader not in missing_loaders:
            continue
        root = dataset.get('data_root', '') or ''
        new_root = f'/path/to/{osp.basename(osp.normpath(root)) or "data"}/'
        options.append(f'{key}.data_root={new_root}')
        for option, ann_file in _evaluator_ann_files(cfg, loader):
            rest = ann_file[len(root):] if root and ann_file.startswith(root) else \
                osp.basename(ann_file)
            options.append(f'{option}={osp.join(new_root, rest)}')
    return ' '.join(dict.fromkeys(options))


def _json_problem(path: str, image_dir: Optional[str], classes: Optional[Sequence[str]],
                  training: bool) -> Optional[str]:
    """What is wrong with a JSON annotation file, or None: empty, not JSON, truncated, and (for
    files up to :data:`FULL_READ_BYTES`) COCO content: no images, no annotations to train on,
    a class of the config that is no category of the file, images missing under
    ``image_dir``."""
    size = osp.getsize(path)
    if size == 0:
        return 'is empty (0 bytes): an interrupted download or copy?'
    with open(path, 'rb') as f:
        head = f.read(256)
        f.seek(max(0, size - 256))
        tail = f.read()
    if head.lstrip()[:1] not in (b'{', b'['):
        return f'is not JSON: it starts with {head.lstrip()[:40]!r}'
    if size > FULL_READ_BYTES:
        if tail.rstrip()[-1:] not in (b'}', b']'):
            return 'is truncated (it does not end with a closing bracket): download it again'
        return None
    try:
        with open(path, encoding='utf-8') as f:
            content = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        return f'is not valid JSON ({error}): truncated or edited by hand?'
    if not isinstance(content, dict) or not isinstance(content.get('images'), list):
        return None  # not COCO: the dataset class reads it
    images = content['images']
    if not images:
        return 'lists no images'
    if training and not content.get('annotations'):
        return 'has no annotations: training needs at least one object'
    names = [c.get('name') for c in content.get('categories') or [] if isinstance(c, dict)]
    unknown = [c for c in classes or () if c not in names]
    if unknown:
        return (f'has no category named {", ".join(map(repr, unknown))} (its categories: '
                f'{", ".join(map(str, names[:10]))}{", ..." if len(names) > 10 else ""}); set '
                'metainfo.classes of the dataset to names of the file')
    if image_dir:
        absent = [im.get('file_name') for im in images if isinstance(im, dict) and
                  not osp.isfile(osp.join(image_dir, str(im.get('file_name'))))]
        if absent:
            return (f'lists {len(absent)} image(s) of {len(images)} that are not in '
                    f'{image_dir} (e.g. {absent[0]}): incomplete copy, or wrong data_prefix?')
    return None


def _content_problems(cfg: Config, loader: str, dataset: ConfigDict) -> List[str]:
    """Problems of the existing JSON annotation files of one dataloader and its evaluator."""
    files = []
    if str(dataset.get('ann_file') or '').endswith('.json'):
        files.append(osp.join(dataset.get('data_root', '') or '', dataset['ann_file']))
    files += [p for _, p in _evaluator_ann_files(cfg, loader) if p.endswith('.json')]
    prefixes = _prefixes(dataset)
    image_dir = prefixes.get('img', prefixes.get('img_path'))
    classes = (dataset.get('metainfo') or {}).get('classes')
    problems = []
    for path in dict.fromkeys(files):
        if osp.isfile(path):
            problem = _json_problem(path, image_dir, classes, loader == 'train_dataloader')
            if problem:
                problems.append(f'{path} {problem} ({loader}).')
    return problems


def check_datasets(cfg: Config, loaders: Optional[Tuple[str, ...]] = None) -> None:
    """Raise :class:`DatasetNotFoundError` if a dataset of the config is missing on disk, or
    :class:`BadDatasetError` if one of its JSON annotation files is unusable.

    A missing dataset's message names every missing path and gives ``--cfg-options`` that
    point every dataloader whose data is missing (and its evaluator's ``ann_file``) at a copy.

    Args:
        cfg (Config): The full config.
        loaders (tuple[str], optional): Only check these dataloaders (e.g. ``('test_dataloader',
            )``); all by default.
    """
    missing, missing_loaders, checked, first_type = [], [], [], None
    for loader, _, dataset in _dataset_cfgs(cfg):
        paths = _paths(dataset) + [p for _, p in _evaluator_ann_files(cfg, loader)]
        absent = [p for p in paths if not osp.exists(p)]
        if not absent:
            continue
        missing_loaders.append(loader)  # also unchecked ones: the hint fixes them too
        if loaders and loader not in loaders:
            continue
        checked.append(loader)
        missing += absent
        first_type = first_type or dataset.get('type', '')
    if checked:
        options = _fix_options(cfg, missing_loaders)
        name, url, layout = DATASET_HELP.get(first_type, (first_type or 'the dataset', None,
                                                          None))
        roots = [d.get('data_root', '') or '' for loader, _, d in _dataset_cfgs(cfg)
                 if loader in checked]
        demo = any(osp.normpath(r).startswith(osp.normpath(DEMO_DATA)) for r in roots)
        if demo:
            name = 'The demo dataset'
        unique: Dict[str, str] = {}
        for path in missing:  # one spelling per path, in order
            unique.setdefault(osp.normpath(path), path)
        missing = list(unique.values())
        lines = [f'{name} not found: {", ".join(missing)} does not exist '
                 f'({", ".join(checked)}).']
        if demo:
            fix = f'Generate it with `python tools/make_demo_data.py --out {DEMO_DATA}`'
        elif url:
            fix = f'Get it from {url} and place it as {layout}'
        else:
            fix = 'Fix data_root in the config'
        lines.append(f'{fix}, or point the config at your copy with --cfg-options {options}')
        raise DatasetNotFoundError('\n'.join(lines))
    problems = [problem for loader, _, dataset in _dataset_cfgs(cfg)
                if not loaders or loader in loaders
                for problem in _content_problems(cfg, loader, dataset)]
    if problems:
        raise BadDatasetError(' '.join(dict.fromkeys(problems)))
