"""One step of a model, ready to be timed: built from its :class:`ModelSpec` on a device, in
inference (``torch.no_grad``, eval mode) or training (forward, scalar loss, backward), under
autocast or not, eager or ``torch.compile``'d; and upstream weights shared with ours."""
import argparse
import contextlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .inputs import synthetic_batch
from .zoo import ModelSpec, build_backbone, build_full_model, build_upstream

AMP_DTYPES = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


@dataclass
class Benchmarked:
    """A built model and its step, ready to be timed."""
    spec: ModelSpec
    model: nn.Module
    step: Callable[[], Any]
    params: int
    data: Optional[dict] = None  #: a full model's preprocessed synthetic batch


def _autocast(device: str, amp: str) -> contextlib.AbstractContextManager:
    dtype = AMP_DTYPES[amp]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=dtype)


def _tensors(outputs: Any) -> List[torch.Tensor]:
    """Every tensor in nested tuples / lists / dicts."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return [t for o in outputs for t in _tensors(o)]
    return []


def backbone_step(model: nn.Module, x: torch.Tensor, mode: str, amp: str = 'none'
                  ) -> Callable[[], Any]:
    """One inference (the outputs) or training step (the loss) of a backbone on ``x``."""
    device = x.device.type
    if mode == 'infer':
        def step():
            with torch.no_grad(), _autocast(device, amp):
                return model(x)
    else:
        def step():
            model.zero_grad(set_to_none=True)
            with _autocast(device, amp):
                loss = sum(t.float().mean() for t in _tensors(model(x)))
            loss.backward()
            return loss.detach()
    return step


def full_model_step(model: nn.Module, data: dict, mode: str, amp: str = 'none',
                    infer_mode: str = 'predict') -> Callable[[], Any]:
    """One inference (``infer_mode``) or training step (``mode='loss'``, summed losses,
    backward) of a full model on preprocessed ``data``."""
    device = data['inputs'].device.type
    if mode == 'infer':
        def step():
            with torch.no_grad(), _autocast(device, amp):
                return model(**data, mode=infer_mode)
    else:
        def step():
            model.zero_grad(set_to_none=True)
            with _autocast(device, amp):
                loss, _ = model.parse_losses(model(**data, mode='loss'))
            loss.backward()
            return loss.detach()
    return step


def build_benchmarked(spec: ModelSpec, args: argparse.Namespace, x: torch.Tensor
                      ) -> Benchmarked:
    """Build ``spec`` on ``args.device`` in the mode's state and make its step."""
    torch.manual_seed(args.seed)
    training = args.mode == 'train'
    if spec.is_config:
        model, scope = build_full_model(spec, args.glnet_kwargs_dict)
        model.to(args.device).train(training)
        data = synthetic_batch(model, scope, args.shape_tuple, training)
        step = full_model_step(model, data, args.mode, args.amp, args.infer_mode)
    else:
        model = (build_upstream(spec, args.glmix_repo) if spec.is_upstream else
                 build_backbone(spec, args.glnet_kwargs_dict))
        model.to(args.device).train(training)
        step = backbone_step(model, x, args.mode, args.amp)
        data = None
    params = sum(p.numel() for p in model.parameters())
    return Benchmarked(spec, model, step, params, data)


def compile_options(args: argparse.Namespace) -> dict:
    """The ``torch.compile`` arguments of ``--compile-backend``, ``--compile-mode``,
    ``--dynamic`` (unset ones left to PyTorch)."""
    options: Dict[str, Any] = dict(backend=args.compile_backend)
    if args.compile_mode:
        options['mode'] = args.compile_mode
    if args.dynamic:
        options['dynamic'] = True
    return options


def compiled_twin(eager: Benchmarked, args: argparse.Namespace, x: Optional[torch.Tensor]
                  ) -> Benchmarked:
    """The ``torch.compile`` twin of ``eager``: the same module (weights and mode), compiled;
    its step is ``eager``'s step with the compiled module in place of the module."""
    spec = ModelSpec(eager.spec.text, eager.spec.name, eager.spec.kwargs, compiled=True)
    compiled = torch.compile(eager.model, **compile_options(args))
    if eager.data is None:
        step = backbone_step(compiled, x, args.mode, args.amp)
    else:
        step = full_model_step(compiled, eager.data, args.mode, args.amp, args.infer_mode)
    return Benchmarked(spec, compiled, step, eager.params)


def build_entries(args: argparse.Namespace, x: torch.Tensor) -> List[Benchmarked]:
    """Every model of ``args.specs`` built, compiled twins right after their eager models."""
    entries: List[Benchmarked] = []
    for spec in args.specs:
        if spec.compiled:
            entries.append(compiled_twin(entries[-1], args, x))
        else:
            entries.append(build_benchmarked(spec, args, x))
    return entries


def share_upstream_weights(entries: Sequence[Benchmarked], x: torch.Tensor, amp: str = 'none'
                           ) -> Dict[Tuple[str, str], float]:
    """Load each upstream GLNet's weights into every GLNet of ours with its arch; return the
    largest relative difference of their outputs, per (ours, upstream) pair.

    The difference is ``max |ours - upstream| / max |upstream|`` over the four stages, in eval
    mode on ``x`` (the modes are restored afterwards).
    """
    diffs = {}
    for theirs in (e for e in entries if e.spec.is_upstream and not e.spec.compiled):
        for ours in entries:
            if ours.spec.is_upstream or ours.spec.is_config or ours.spec.compiled or \
                    ours.spec.glnet_arch != theirs.spec.glnet_arch:
                continue
            try:
                ours.model.load_state_dict(theirs.model.state_dict())
            except RuntimeError as error:
                print(f'warning: {ours.spec.label} does not take the weights of '
                      f'{theirs.spec.label}, not shared: {error}', file=sys.stderr)
                continue
            diffs[(ours.spec.label, theirs.spec.label)] = max_relative_difference(
                ours.model, theirs.model, x, amp)
    return diffs


def max_relative_difference(ours: nn.Module, theirs: nn.Module, x: torch.Tensor,
                            amp: str = 'none') -> float:
    modes = ours.training, theirs.training
    ours.eval(), theirs.eval()
    with torch.no_grad(), _autocast(x.device.type, amp):
        pairs = list(zip(_tensors(ours(x)), _tensors(theirs(x))))
    ours.train(modes[0]), theirs.train(modes[1])
    return max(((a.float() - b.float()).abs().max() / b.float().abs().max()).item()
               for a, b in pairs)

