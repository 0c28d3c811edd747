"""What the tools share: config overrides, dataset checks, building a config's model.

Both tools work for MMDetection, MMSegmentation and MMPretrain configs alike: the config's
``default_scope`` decides which library builds the model, datasets and metrics.
"""
import gc
import os.path as osp
import traceback
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict

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


class DatasetNotFoundError(FileNotFoundError):
    """A config's dataset is not on disk; the message says where it must be and how to get it."""


def _dataset_cfgs(cfg: Config) -> Iterator[Tuple[str, ConfigDict]]:
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if not loader:
            continue
        dataset = loader.get('dataset')
        while dataset is not None and 'dataset' in dataset:  # wrappers: RepeatDataset etc.
            dataset = dataset['dataset']
        if dataset is not None:
            yield name, dataset


def _paths(dataset: ConfigDict) -> List[str]:
    root = dataset.get('data_root', '') or ''
    paths = []
    if dataset.get('ann_file'):
        paths.append(osp.join(root, dataset['ann_file']))
    prefix = dataset.get('data_prefix', {}) or {}
    if isinstance(prefix, str):
        prefix = dict(img=prefix)
    paths += [osp.join(root, p) for p in prefix.values() if isinstance(p, str) and p]
    return paths or ([root] if root else [])


def check_datasets(cfg: Config, loaders: Optional[Tuple[str, ...]] = None) -> None:
    """Raise :class:`DatasetNotFoundError` if a dataset of the config is missing on disk.

    Args:
        cfg (Config): The full config.
        loaders (tuple[str], optional): Only check these dataloaders (e.g. ``('test_dataloader',
            )``); all by default.
    """
    for loader, dataset in _dataset_cfgs(cfg):
        if loaders and loader not in loaders:
            continue
        missing = [p for p in _paths(dataset) if not osp.exists(p)]
        if not missing:
            continue
        name, url, layout = DATASET_HELP.get(dataset.get('type', ''),
                                             (dataset.get('type', 'the dataset'), None, None))
        lines = [f'{name} not found: {", ".join(missing)} does not exist ({loader}).']
        if url:
            lines.append(f'Get it from {url} and place it as {layout}, or point the config at '
                         'your copy with --cfg-options '
                         f'{loader}.dataset.data_root=/path/to/data/')
        else:
            lines.append('Generate the demo data with `python tools/make_demo_data.py` or fix '
                         'data_root in the config.')
        raise DatasetNotFoundError('\n'.join(lines))


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
    no checkpoint is read, for the analysis tools."""
    from mmengine.registry import MODELS, init_default_scope
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return MODELS.build(model_cfg)


# Hooks every run needs, whatever the config (configs/_base_/glnet_common.py has them; a config
# that replaces custom_hooks, or a stock OpenMMLab config with a glmix_mm backbone, may not).
SAFETY_HOOKS = ('CheckpointFitHook', 'ResumableTrainingHook')


def _hook_name(hook: dict) -> str:
    kind = hook.get('type', '')
    return (kind if isinstance(kind, str) else getattr(kind, '__name__', '')).split('.')[-1]


def add_safety_hooks(cfg: Config, allow_partial: bool = False) -> None:
    """Make sure ``cfg.custom_hooks`` holds the glmix_mm hooks that check loaded checkpoints
    and keep training resumable (:class:`~glmix_mm.engine.CheckpointFitHook`,
    :class:`~glmix_mm.engine.ResumableTrainingHook`).

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
