"""Refuse checkpoints that do not fit the model, where a mismatch is always a mistake.

MMEngine loads ``load_from``, ``--resume`` and test checkpoints with ``strict=False``: a file of
another model only logs "missing keys" and the run goes on with random weights. The rules here:

* ``exact`` (resuming, testing, drawing): every key of the model present, no other key, every
  shape equal;
* ``finetune`` (``load_from`` in training, mmdet's usual practice): the backbone must fit
  exactly; outside the backbone and the neck, tensors whose shapes differ only in their first
  dimension (the class-dependent layers, e.g. ``roi_head.bbox_head.fc_cls``, ``fc_reg``,
  ``mask_head.conv_logits``, ``retina_cls``, ``decode_head.conv_seg``) are skipped and named in
  the log; head keys missing on either side are a warning (e.g. a Mask R-CNN checkpoint for a
  Faster R-CNN); a file that holds nothing but the backbone is refused (that is what
  ``backbone.init_cfg=dict(type='Pretrained')`` is for).

With ``allow_partial`` every refusal becomes a warning and the keys that fit are loaded.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from mmengine.runner.checkpoint import CheckpointLoader

from glmix_mm.registry import register_hook

StateDict = Dict[str, torch.Tensor]
MODES = ('exact', 'finetune')
# Model parts whose tensors never depend on the number of classes.
CLASS_INDEPENDENT = ('backbone.', 'neck.', 'data_preprocessor.')
# Batch-norm step counters: ``BatchNorm._load_from_state_dict`` fills a missing one with 0 and
# it only matters for ``momentum=None``; timm-era files (the released GLNet ones) lack them.
OPTIONAL_MISSING = ('num_batches_tracked', )


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model; the message holds the key report."""


def loaded_state_dict(checkpoint: Mapping) -> StateDict:
    """The tensors MMEngine's ``Runner.load_checkpoint`` would load from ``checkpoint``:
    its ``state_dict`` entry (or the whole dict), without a ``module.`` prefix."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(
            f'A checkpoint must be a dict of tensors, got a {type(checkpoint).__name__}.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise CheckpointMismatchError(
            f'The checkpoint\'s state_dict is a {type(state_dict).__name__}, not a dict.')
    return OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in state_dict.items()
                       if isinstance(v, torch.Tensor))


def _preview(items: List[str], limit: int = 5) -> str:
    more = f' ... (+{len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


class FitReport:
    """How a state dict fits a model: missing, unexpected and shape-mismatched keys.

    Args:
        model (nn.Module): The model that would receive the weights.
        state_dict (dict): The weights, with the model's key names.
    """

    def __init__(self, model: nn.Module, state_dict: StateDict) -> None:
        own = model.state_dict()
        self.num_model_keys = len(own)
        self.missing = [
            k for k in own if k not in state_dict and not k.endswith(OPTIONAL_MISSING)
        ]
        self.unexpected = [k for k in state_dict if k not in own]
        self.shapes: Dict[str, Tuple[tuple, tuple]] = {
            k: (tuple(v.shape), tuple(own[k].shape))
            for k, v in state_dict.items() if k in own and v.shape != own[k].shape
        }
        self.backbone_without_prefix = self._is_bare_backbone(own, state_dict)

    @staticmethod
    def _is_bare_backbone(own: Mapping, state_dict: Mapping) -> bool:
        """Most keys of ``state_dict`` are backbone keys of the model without the prefix."""
        return bool(state_dict) and sum(f'backbone.{k}' in own
                                        for k in state_dict) > len(state_dict) / 2

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.shapes)

    def class_dependent(self) -> List[str]:
        """Shape-mismatched head tensors that differ only in their first dimension."""
        return [
            k for k, (theirs, ours) in self.shapes.items()
            if not k.startswith(CLASS_INDEPENDENT) and len(theirs) == len(ours) and
            theirs[1:] == ours[1:]
        ]

    def lines(self, keys: Optional[Dict[str, List[str]]] = None) -> List[str]:
        """The key report, one line per kind of mismatch (only the given ``keys`` if set)."""
        keys = keys if keys is not None else dict(
            missing=self.missing, unexpected=self.unexpected, shapes=list(self.shapes))
        out = []
        if keys.get('missing'):
            out.append(f'  {len(keys["missing"])} of the model\'s {self.num_model_keys} keys '
                       f'missing: {_preview(keys["missing"])}')
        if keys.get('unexpected'):
            out.append(f'  {len(keys["unexpected"])} unexpected keys: '
                       f'{_preview(keys["unexpected"])}')
        if keys.get('shapes'):
            shapes = [f'{k} {self.shapes[k][0]} vs {self.shapes[k][1]}' for k in keys['shapes']]
            out.append(f'  {len(shapes)} shape mismatches (checkpoint vs model): '
                       f'{_preview(shapes, 3)}')
        return out


def check_fit(model: nn.Module,
              state_dict: StateDict,
              mode: str = 'exact',
              source: str = 'the checkpoint',
              allow_partial: bool = False,
              hint: str = '') -> List[str]:
    """Check that ``state_dict`` fits ``model`` under ``mode``; see the module docstring.

    Args:
        model (nn.Module): The model (unwrapped) that will receive the weights.
        state_dict (dict): The weights, as they will be loaded.
        mode (str): ``'exact'`` or ``'finetune'``.
        source (str): What the weights are, for the messages (e.g. ``load_from=x.pth``).
        allow_partial (bool): Warn instead of refusing.
        hint (str): Last line of the error: what the user can do.

    Returns:
        list[str]: Keys to leave out of the load (shape mismatches that are skipped).

    Raises:
        CheckpointMismatchError: The checkpoint does not fit and ``allow_partial`` is False.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    report = FitReport(model, state_dict)
    if report.fits:
        return []
    skipped: List[str] = []
    problems = dict(missing=report.missing, unexpected=report.unexpected,
                    shapes=list(report.shapes))
    what = 'does not fit the model'
    if mode == 'finetune':
        skipped = report.class_dependent()
        problems = dict(
            missing=[k for k in report.missing if k.startswith('backbone.')],
            unexpected=[k for k in report.unexpected if k.startswith('backbone.')],
            shapes=[k for k in report.shapes if k not in skipped])
        outside = [k for k in model.state_dict() if not k.startswith('backbone.')]
        if outside and all(k in report.missing for k in outside):
            problems['missing'] = report.missing
            what = ('holds no weights outside the backbone; to start from backbone weights, '
                    'set model.backbone.init_cfg=dict(type=\'Pretrained\', checkpoint=...) '
                    'instead of load_from')
        elif any(problems.values()):
            what = 'does not fit the model\'s backbone (another arch or model family?)'
    if any(problems.values()):
        lines = [f'{source} {what}:'] + report.lines(problems)
        if report.backbone_without_prefix:
            lines.append('  Its keys are those of a bare backbone (no "backbone." prefix): load '
                         'it with model.backbone.init_cfg=dict(type=\'Pretrained\', '
                         'checkpoint=...).')
        if hint:
            lines.append(f'  {hint}')
        if not allow_partial:
            raise CheckpointMismatchError('\n'.join(lines))
        lines[0] = f'{source} {what}; loading the keys that fit (allow_partial):'
        print_log('\n'.join(lines[:-1] if hint else lines), logger='current', level=30)
        return list(report.shapes)
    if skipped:
        print_log(
            f'{source}: skipped {len(skipped)} class-dependent head tensors whose shapes '
            f'differ (checkpoint vs model), they keep their initialisation: ' +
            _preview([f'{k} {report.shapes[k][0]} vs {report.shapes[k][1]}' for k in skipped],
                     8), logger='current', level=30)
    head_only = [k for k in report.missing + report.unexpected if not k.startswith('backbone.')]
    if head_only:
        print_log(
            f'{source}: the backbone fits; outside it ' + '; '.join(
                line.strip() for line in report.lines(
                    dict(missing=[k for k in report.missing if k in head_only],
                         unexpected=[k for k in report.unexpected if k in head_only]))) +
            ' (they keep their initialisation / are ignored)', logger='current', level=30)
    return skipped


def drop_keys(checkpoint: dict, keys: List[str]) -> None:
    """Remove ``keys`` (model names) from the state dict MMEngine will load from
    ``checkpoint``, in place."""
    if not keys:
        return
    state_dict = checkpoint.get('state_dict', checkpoint)
    drop = set(keys)
    for k in [k for k in state_dict if re.sub(r'^module\.', '', k) in drop]:
        del state_dict[k]


@register_hook
class CheckpointFitHook(Hook):
    """Check every checkpoint the runner loads against its model before the weights are set.

    Runs in ``after_load_checkpoint``, which MMEngine's ``Runner.load_checkpoint`` calls after
    reading the file and before loading it into the model. The mode follows what the runner
    does: ``--resume`` -> ``exact`` (a resumed run must continue this very model); training
    with ``load_from`` -> ``finetune``; testing or validating -> ``exact``. See
    :mod:`glmix_mm.engine.checkpoint_fit` for the rules.

    Args:
        allow_partial (bool): Load what fits and warn instead of refusing (``tools/test.py
            --allow-partial``). Defaults to False.
    """
    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: bool = False) -> None:
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        source = f'The checkpoint {runner._load_from}' if runner._load_from else \
            'The checkpoint'
        if getattr(runner, '_resume', False):
            mode, hint = 'exact', '--resume continues a run of this very config; to start ' \
                'from other weights use load_from instead.'
        elif isinstance(runner._train_loop, BaseLoop):
            mode, hint = 'finetune', 'Is load_from a checkpoint of this model?'
        else:
            mode, hint = 'exact', ('Is it a checkpoint of this config (same backbone arch, same '
                                   'number of classes)? tools/test.py --allow-partial loads the '
                                   'keys that fit anyway.')
        skipped = check_fit(model, loaded_state_dict(checkpoint), mode, source,
                            self.allow_partial, hint)
        drop_keys(checkpoint, skipped)


def check_file(model: nn.Module,
               filename: str,
               allow_partial: bool = False,
               hint: str = '') -> dict:
    """Read ``filename`` (any MMEngine scheme) and check that it fits ``model`` exactly, as
    :func:`check_fit` in ``exact`` mode.

    Returns:
        dict: The checkpoint as read.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    check_fit(model, loaded_state_dict(checkpoint), 'exact', f'The checkpoint {filename}',
              allow_partial, hint)
    return checkpoint
