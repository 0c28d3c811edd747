"""Does a checkpoint fit a model?

Two callers ask: a backbone's ``init_weights`` (:func:`load_pretrained`: find the weights in any of
the known layouts, let the model family convert key names, refuse what does not fit) and the
runner for ``load_from`` / ``--resume`` / testing (:func:`check_fit`). The rules of the latter:

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
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import CheckpointLoader

from glmix_mm.errors import GLMixMMError

StateDict = Dict[str, torch.Tensor]

# Where the weights sit inside a checkpoint, by order of preference. ``state_dict``: OpenMMLab;
# ``model``: upstream GLNet releases (timm-style training scripts); ``model_ema``: the GLNet-16G
# release, whose EMA weights are the published ones; ``module``: DeepSpeed-style files.
STATE_DICT_KEYS = ('state_dict', 'model', 'model_ema', 'module')


def extract_state_dict(checkpoint: Mapping, preferred_key: Optional[str] = None) -> StateDict:
    """Return the tensors of a checkpoint, whatever container they come in.

    Args:
        checkpoint (Mapping): What :func:`torch.load` returned.
        preferred_key (str, optional): Look for this key first (e.g. ``'model_ema'``).

    Returns:
        dict: Parameter name to tensor, with any ``module.`` (DataParallel) prefix stripped.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'A checkpoint must be a dict, got {type(checkpoint).__name__}.')
    keys = ((preferred_key, ) if preferred_key else ()) + STATE_DICT_KEYS
    state_dict = next((checkpoint[k] for k in keys if isinstance(checkpoint.get(k), Mapping)),
                      checkpoint)
    return _tensors(state_dict)


def _tensors(state_dict: Mapping) -> StateDict:
    """The tensor entries of ``state_dict``, without a ``module.`` (DataParallel) prefix."""
    return OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in state_dict.items()
                       if isinstance(v, torch.Tensor))


def strip_backbone_prefix(state_dict: StateDict) -> StateDict:
    """Keep the ``backbone.`` part of a whole-model (detector / classifier) state dict.

    A state dict without any ``backbone.`` key is returned unchanged.
    """
    if not any(k.startswith('backbone.') for k in state_dict):
        return state_dict
    return OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items()
                       if k.startswith('backbone.'))


MODES = ('exact', 'finetune')
# Model parts whose tensors never depend on the number of classes.
CLASS_INDEPENDENT = ('backbone.', 'neck.', 'data_preprocessor.')
# Batch-norm step counters: ``BatchNorm._load_from_state_dict`` fills a missing one with 0 and
# it only matters for ``momentum=None``; timm-era files (the released GLNet ones) lack them.
OPTIONAL_MISSING = ('num_batches_tracked', )


class CheckpointMismatchError(GLMixMMError, RuntimeError):
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
    return _tensors(state_dict)


def _preview(items: List[str], limit: int = 5) -> str:
    more = f' ... (+{len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


class FitReport:
    """How a state dict fits a model: missing, unexpected and shape-mismatched keys.

    Args:
        model (nn.Module): The model that would receive the weights.
        state_dict (dict): The weights, with the model's key names.
        optional_missing (Iterable[str]): Regular expressions of model keys that may be missing
            (besides BatchNorm's ``num_batches_tracked``, which always may).
    """

    def __init__(self, model: nn.Module, state_dict: StateDict,
                 optional_missing: Iterable[str] = ()) -> None:
        own = model.state_dict()
        patterns = [re.compile(p) for p in optional_missing]
        self.num_model_keys = len(own)
        self.missing = [
            k for k in own if k not in state_dict and not k.endswith(OPTIONAL_MISSING)
            and not any(p.match(k) for p in patterns)
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
    def num_problems(self) -> int:
        """Missing, unexpected and shape-mismatched keys, together."""
        return len(self.missing) + len(self.unexpected) + len(self.shapes)

    @property
    def fits(self) -> bool:
        return self.num_problems == 0

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
            out.append(f'  {len(keys["missing"])} missing keys: {_preview(keys["missing"])} '
                       f'(the model has {self.num_model_keys})')
        if keys.get('unexpected'):
            out.append(f'  {len(keys["unexpected"])} unexpected keys: '
                       f'{_preview(keys["unexpected"])}')
        if keys.get('shapes'):
            shapes = [f'{k} {self.shapes[k][0]} vs {self.shapes[k][1]}' for k in keys['shapes']]
            out.append(f'  {len(shapes)} shape mismatches: {_preview(shapes, 3)} (checkpoint '
                       'vs model)')
        return out


def check_state_dict(model: nn.Module,
                     state_dict: StateDict,
                     description: str,
                     optional_missing: Iterable[str] = (),
                     allow_partial: bool = False) -> List[str]:
    """Raise a readable error when ``state_dict`` does not fit ``model`` exactly.

    Args:
        model (nn.Module): The model that will receive the weights.
        state_dict (dict): Converted weights, with the model's own key names.
        description (str): What the model is, for the message (e.g. ``GLNet(arch='4g')``).
        optional_missing (Iterable[str]): Regular expressions of model keys that a checkpoint may
            lack (layers that only exist downstream, such as the per-output norms).
        allow_partial (bool): Warn with the key report instead of raising.

    Returns:
        list[str]: The keys whose shapes differ (to leave out of the load).

    Raises:
        CheckpointMismatchError: With the key report, unless ``allow_partial``.
    """
    report = FitReport(model, state_dict, optional_missing)
    if report.fits:
        return []
    lines = [f'The checkpoint does not fit {description}.'] + report.lines()
    if not allow_partial:
        raise CheckpointMismatchError('\n'.join(lines + [
            '  Is it a checkpoint of this model family and of this arch? Pick the `arch` that '
            'matches the checkpoint, or convert it with tools/model_converters/.']))
    print_log('\n'.join(lines + ['  Loading the keys that fit (allow_partial).']),
              logger='current', level=30)
    return list(report.shapes)


def load_pretrained(model: nn.Module,
                    filename: str,
                    description: str,
                    convert: Callable[[StateDict], StateDict] = lambda sd: sd,
                    preferred_key: Optional[str] = None,
                    optional_missing: Iterable[str] = (),
                    allow_partial: bool = False) -> None:
    """Load a checkpoint into a backbone after conversion and a strict check.

    Args:
        model (nn.Module): The backbone.
        filename (str): Path or URL of the checkpoint (any MMEngine-supported scheme).
        description (str): What the model is, for messages.
        convert (Callable): Maps the checkpoint's backbone keys to the model's.
        preferred_key (str, optional): Container key to look at first, see
            :func:`extract_state_dict`.
        optional_missing (Iterable[str]): See :func:`check_state_dict`.
        allow_partial (bool): Load the tensors that fit and warn about the rest instead of
            refusing the checkpoint (for drawing and inspection, never for training).
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state_dict = convert(strip_backbone_prefix(extract_state_dict(checkpoint, preferred_key)))
    skipped = check_state_dict(model, state_dict, f'{description} (from {filename})',
                               optional_missing, allow_partial)
    state_dict = {k: v for k, v in state_dict.items() if k not in skipped}
    model.load_state_dict(state_dict, strict=False)
    kept = [k for k in model.state_dict() if k not in state_dict]
    print_log(
        f'Loaded {len(state_dict)} tensors into {description} from {filename}' +
        (f'; kept the initialisation of {_preview(kept)}' if kept else ''),
        logger=MMLogger.get_current_instance())


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
