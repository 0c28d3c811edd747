"""What the command-line options of ``tools/train.py`` and ``tools/test.py`` change in a
config: work dir, launcher, drawing, mixed precision, and the glmix_mm hooks every run needs."""
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config

from glmix_mm.utils.config_checks import ConfigError


def apply_common_args(cfg: Config, work_dir: Optional[str], config_path: str,
                      launcher: str) -> None:
    """Work dir (argument, config, or ``work_dirs/<config name>``) and launcher.

    Raises:
        ConfigError: The work dir is a file, or cannot be written.
    """
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
    if osp.exists(cfg.work_dir) and not osp.isdir(cfg.work_dir):
        raise ConfigError(f'the work dir {cfg.work_dir} is a file: give a folder to --work-dir.')
    existing = osp.abspath(cfg.work_dir)
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f'cannot write the work dir {cfg.work_dir}: {existing} is not a '
                          'writable folder; give another --work-dir.')
    cfg.launcher = launcher


def enable_show_dir(cfg: Config, show_dir: str) -> None:
    """Make the config's visualization hook save drawn predictions under ``show_dir``.

    Handles MMDetection's ``DetVisualizationHook``, MMSegmentation's ``SegVisualizationHook``
    and MMPretrain's ``VisualizationHook``.
    """
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is None:
        raise ConfigError('--show-dir: the config has no default_hooks.visualization to draw '
                          'predictions with; add one, or leave out --show-dir.')
    hook_type = hook['type']
    if hook_type.endswith('DetVisualizationHook'):
        hook.update(draw=True, test_out_dir=show_dir)
    elif hook_type.endswith('SegVisualizationHook'):
        hook.update(draw=True, interval=1)
        # mmseg's visualizer writes under save_dir as given: keep it inside the work dir too.
        cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)
    else:  # mmpretrain
        hook.update(enable=True, out_dir=show_dir)


#: The glmix_mm hooks every run needs, whatever its config: random states saved in checkpoints
#: (so that --resume continues the same random stream), checkpoints checked against the model
#: when loaded, training that a signal stops cleanly and --resume continues, MMEngine's
#: ``compile`` option with the optimizer update left eager (acts only with that option).
#: ``configs/_base_/glnet_common.py`` lists these; :func:`add_safety_hooks` adds the missing
#: ones to any config run by ``tools/train.py`` / ``tools/test.py`` (a config that replaces
#: ``custom_hooks``, a stock OpenMMLab config).
SAFETY_HOOKS = ('RNGStateHook', 'CheckpointFitHook', 'ResumableTrainingHook',
                'EagerOptimizerStepHook')


def _hook_name(hook: dict) -> str:
    """The class name that a ``type=`` of a config names (scope prefix removed)."""
    kind = hook.get('type', '')
    return (kind if isinstance(kind, str) else getattr(kind, '__name__', '')).split('.')[-1]


def use_safe_checkpoint_hook(default_hooks: dict) -> None:
    """Write checkpoints atomically: a ``default_hooks.checkpoint`` of type ``CheckpointHook``
    becomes a :class:`~glmix_mm.engine.SafeCheckpointHook` (same arguments, same files).

    Args:
        default_hooks (dict): A config's ``default_hooks``, changed in place.
    """
    hook = default_hooks.get('checkpoint')
    if isinstance(hook, dict) and _hook_name(hook) == 'CheckpointHook':
        hook['type'] = 'SafeCheckpointHook'


def use_resumable_loop(cfg: Config) -> None:
    """Let an epoch-based run resume inside an epoch: MMEngine's ``EpochBasedTrainLoop`` and
    ``DefaultSampler`` of the training data become
    :class:`~glmix_mm.engine.ResumableEpochBasedTrainLoop` and
    :class:`~glmix_mm.engine.ResumableSampler` (same arguments). Other loops and samplers
    stay.

    Args:
        cfg (Config): The full config, changed in place.
    """
    train_cfg, loader = cfg.get('train_cfg'), cfg.get('train_dataloader')
    if not train_cfg or not loader:
        return
    loop = _hook_name(train_cfg) or ('EpochBasedTrainLoop' if train_cfg.get('by_epoch') else '')
    sampler = loader.get('sampler')
    if loop not in ('EpochBasedTrainLoop', 'ResumableEpochBasedTrainLoop'):
        return
    train_cfg.pop('by_epoch', None)
    train_cfg['type'] = 'ResumableEpochBasedTrainLoop'
    if isinstance(sampler, dict) and _hook_name(sampler) == 'DefaultSampler':
        sampler['type'] = 'ResumableSampler'


def add_safety_hooks(cfg: Config, allow_partial: bool = False) -> None:
    """Make sure ``cfg.custom_hooks`` holds the :data:`SAFETY_HOOKS` (random states in
    checkpoints, loaded checkpoints checked, training resumable, MMEngine's ``compile`` option
    working), and that checkpoints are written atomically (:func:`use_safe_checkpoint_hook`).

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
    use_safe_checkpoint_hook(cfg.get('default_hooks') or {})


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
