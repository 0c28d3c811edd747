"""What the tools share: config overrides, dataset checks, building a config's model.

Both tools work for MMDetection, MMSegmentation and MMPretrain configs alike: the config's
``default_scope`` decides which library builds the model, datasets and metrics.
"""
import gc
import json
import os.path as osp
import traceback
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict

from .config_checks import unknown_types_refused
from .model_checks import check_neck_channels

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


class DatasetNotFoundError(FileNotFoundError):
    """A config's dataset is not on disk; the message says where it must be and how to get it."""


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


def apply_common_args(cfg: Config, work_dir: Optional[str], config_path: str,
                      launcher: str) -> None:
    """Work dir (argument, config, or ``work_dirs/<config name>``) and launcher."""
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
    cfg.launcher = launcher


def setup_cpu_distributed(cfg: Config) -> None:
    """Let a distributed launch (torchrun) run on machines without a GPU.

    MMEngine's PyTorch launcher assumes one GPU per process (it calls ``torch.cuda.set_device``
    and gives DDP a device id). Without a GPU, start the gloo process group here (MMEngine then
    uses it as it is) and wrap the model in CPU DDP (no device ids). Nothing changes with GPUs.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group('gloo')  # RANK, WORLD_SIZE, MASTER_ADDR from torchrun
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def end_distributed() -> None:
    """Destroy the default process group, if one was started, while Python still runs.

    Destroying it joins the worker threads of its gloo backend here. Left to interpreter exit,
    a worker that drops the last reference to a collective of the backward pass (DDP's bucket
    all-reduces hold a Python object, the autograd context) after finalisation has begun is
    ended by Python inside that C++ destructor: "terminate called without an active exception"
    and SIGABRT, although the run has finished. The group is destroyed only with its last
    reference, and the DDP-wrapped model holds one: release the runner first.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()  # a runner is full of reference cycles; its DDP model holds the group
    dist.destroy_process_group()


@contextmanager
def distributed_session(cfg: Config) -> Iterator[None]:
    """Where a tool builds and runs its runner: a distributed launch starts (gloo on the CPU,
    :func:`setup_cpu_distributed`) and always ends cleanly (:func:`end_distributed`).

    Build and run the runner in a function called inside the block, so that no reference to
    it outlives the block. If the block raises, the finished frames of the traceback let go of
    their locals (the runner among them) before the group is destroyed; the traceback still
    prints as usual.

    Args:
        cfg (Config): The full config, with ``launcher`` set (:func:`apply_common_args`).
    """
    setup_cpu_distributed(cfg)
    try:
        yield
    except BaseException as error:
        traceback.clear_frames(error.__traceback__)
        raise
    finally:
        end_distributed()


def enable_show_dir(cfg: Config, show_dir: str) -> None:
    """Make the config's visualization hook save drawn predictions under ``show_dir``.

    Handles MMDetection's ``DetVisualizationHook``, MMSegmentation's ``SegVisualizationHook``
    and MMPretrain's ``VisualizationHook``.
    """
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise KeyError('The config has no default_hooks.visualization to draw predictions.')
    hook_type = hook['type']
    if hook_type.endswith('DetVisualizationHook'):
        hook.update(draw=True, test_out_dir=show_dir)
    elif hook_type.endswith('SegVisualizationHook'):
        hook.update(draw=True, interval=1)
        # mmseg's visualizer writes under save_dir as given: keep it inside the work dir too.
        cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)
    else:  # mmpretrain
        hook.update(enable=True, out_dir=show_dir)


def build_model_from_cfg(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` the way MMEngine's Runner does (in the config's ``default_scope``,
    with a top-level ``data_preprocessor`` moved into the model), without ``init_weights()``:
    no checkpoint is read, for the analysis tools.

    Raises:
        ConfigError: A ``type`` the registries do not hold, or a neck / head whose input
            channels differ from the backbone's outputs.
    """
    from mmengine.registry import MODELS, init_default_scope
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    with unknown_types_refused():
        model = MODELS.build(model_cfg)
    check_neck_channels(model)
    return model


def build_runner(cfg: Config):
    """``Runner.from_cfg(cfg)`` (which builds the model), with the model checks of
    :func:`build_model_from_cfg`.

    Raises:
        ConfigError: As :func:`build_model_from_cfg`.
    """
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner
    with unknown_types_refused():
        runner = Runner.from_cfg(cfg)
    check_neck_channels(runner.model.module if is_model_wrapper(runner.model) else runner.model)
    return runner


# Hooks every run needs, whatever the config (configs/_base_/glnet_common.py has them; a config
# that replaces custom_hooks, or a stock OpenMMLab config with a glmix_mm backbone, may not).
# EagerOptimizerStepHook acts only with MMEngine's ``compile`` option.
SAFETY_HOOKS = ('CheckpointFitHook', 'ResumableTrainingHook', 'EagerOptimizerStepHook')


def _hook_name(hook: dict) -> str:
    kind = hook.get('type', '')
    return (kind if isinstance(kind, str) else getattr(kind, '__name__', '')).split('.')[-1]


def add_safety_hooks(cfg: Config, allow_partial: bool = False) -> None:
    """Make sure ``cfg.custom_hooks`` holds the glmix_mm hooks that check loaded checkpoints,
    keep training resumable and let MMEngine's ``compile`` option work
    (:class:`~glmix_mm.engine.CheckpointFitHook`,
    :class:`~glmix_mm.engine.ResumableTrainingHook`,
    :class:`~glmix_mm.engine.EagerOptimizerStepHook`).

    Args:
        cfg (Config): The full config, changed in place.
        allow_partial (bool): Let the checkpoint check warn instead of refusing.
    """
    hooks = [dict(h) for h in (cfg.get('custom_hooks') or [])]
    present = {_hook_name(h) for h in hooks}
    hooks += [dict(type=name) for name in SAFETY_HOOKS if name not in present]
    for hook in hooks:
        if _hook_name(hook) == 'CheckpointFitHook':
            hook['allow_partial'] = allow_partial
    cfg.custom_hooks = hooks


def enable_amp(cfg: Config, training: bool) -> None:
    """Turn on mixed precision for ``--amp``.

    On a GPU: MMEngine's float16 autocast of the whole model (``AmpOptimWrapper`` with a
    dynamic loss scaler in training, ``test_cfg.fp16`` in testing). On the CPU: bfloat16
    autocast of the backbone and neck (:class:`~glmix_mm.engine.CPUAutocastHook`), as MMCV's
    CPU detection ops have no bfloat16 kernels.

    Args:
        cfg (Config): The full config, changed in place.
        training (bool): For ``tools/train.py`` rather than ``tools/test.py``.
    """
    if torch.cuda.is_available():
        if training:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
        return
    hooks = [dict(h) for h in (cfg.get('custom_hooks') or [])]
    if 'CPUAutocastHook' not in {_hook_name(h) for h in hooks}:
        hooks.append(dict(type='CPUAutocastHook'))
    cfg.custom_hooks = hooks
