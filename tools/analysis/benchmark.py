"""Latency, throughput and peak memory of backbones and full models, side by side.

Builds every requested model once in one process, then runs rounds: in each round every model
runs once, in an order rotated from round to round, so that slow drifts of the machine (clock,
other jobs) hit all models alike. Reports the median and the minimum latency, the throughput and
each model's speed relative to a reference model (the first one unless ``--ref``).

Models, by name (``python tools/analysis/benchmark.py --list`` prints them):

* ours: ``glnet-{stl,stl-paramslot,4g,9g,16g}`` (``GLNet(arch, out_norm=None)``, the raw stage
  outputs), ``conformer-{ti,s16,s32,b}``;
* baselines: ``swin-t`` (mmdet's Swin-T as in its Mask R-CNN config), ``r50`` (mmdet's
  ResNet-50), ``convnext-t`` (mmpretrain's ConvNeXt-T); all with their four stage outputs;
* ``upstream-glnet-{stl,stl-paramslot,4g,9g,16g}``: the authors' code (``models/glnet.py`` of a
  clone of github.com/rayleizhu/GLMix, given by ``--glmix-repo``; needs ``timm`` and
  ``fairscale``), its four stage outputs. When ours and upstream of one arch run together, ours
  gets upstream's weights and the largest relative difference of their outputs is printed;
* a config file (``configs/maskrcnn_glnet_4g_coco.py``, any mmdet / mmseg / mmpretrain config):
  the full model, built without loading any checkpoint, on synthetic images and ground truth.

Any name takes constructor arguments (config options for a config) after a colon:
``glnet-4g:mhsa_window=14``, ``r50:norm_eval=True,frozen_stages=1``,
``configs/maskrcnn_glnet_4g_coco.py:model.backbone.with_cp=True``. ``--glnet-kwargs`` adds
arguments to every GLNet of ours (names and configs' GLNet backbones).

What one step is: ``--mode infer`` runs the model under ``torch.no_grad()`` in eval mode
(backbones: ``model(x)``; full models: ``mode='predict'``, or ``--infer-mode tensor``);
``--mode train`` runs, in train mode, the forward pass, a scalar loss (backbones: the sum of the
means of the outputs; full models: ``mode='loss'`` with synthetic ground truth, summed by
``parse_losses``) and the backward pass, without an optimizer. ``--amp`` runs the forward pass
under ``torch.autocast``. Data preprocessing of full models (normalisation, padding) is done once
beforehand and not timed.

Peak memory is the memory a step needs beyond the built model and its input. On CUDA it is
measured in the benchmark process (``torch.cuda.max_memory_allocated``, reset before each step,
minus what was allocated before the step). On the CPU the peak resident set size is
process-wide, so ``--memory`` measures each model in a fresh process: resident memory after one
step (``VmHWM``, the high-water mark, reset after building) minus that after building the model
and its input. That first step includes one-off costs (lazily loaded kernels, allocator caches).
On the CPU the report also gives each model's minor page faults per timed step: first touches of
memory fresh from the OS, which large short-lived tensors cause when the allocator returns them
to the OS between steps, and which cost time.

``--compile`` adds, for every model, a twin compiled with ``torch.compile`` (``--compile-backend``,
``--compile-mode``, ``--dynamic``; the same module and weights) that runs in the same alternating
rounds as its eager original, labelled ``MODEL (compiled)``. Its first call (tracing, graph
capture and code generation: the compile time) is timed apart and not among the timed steps;
the report gives that compile time, the graph breaks dynamo met and the speed of the compiled
model relative to its eager twin.

``--profile N`` then runs each model N more steps under the PyTorch profiler and prints its
operator self time per step by kernel class (dense convolutions, depth-wise convolutions,
matmuls, fused attention, everything else) and its ``--top`` operators with their input shapes:
where the time goes, and what two implementations of one model do differently.

Examples::

    # CPU, inference, fp32, ours against the baselines at the COCO test size
    python tools/analysis/benchmark.py glnet-4g swin-t r50 convnext-t --shape 1x3x800x1280

    # ours against the authors' code with shared weights (outputs compared too)
    PYTHONPATH=/path/to/fairscale python tools/analysis/benchmark.py glnet-4g \
        upstream-glnet-4g --glmix-repo /tmp/GLMix --shape 8x3x224x224 --memory --markdown

    # GPU, a training step under bf16 autocast; a GLNet variant side by side with the default
    python tools/analysis/benchmark.py glnet-4g glnet-4g:mhsa_window=14 r50 --device cuda \
        --mode train --amp bf16 --shape 2x3x800x1280

    # torch.compile (inductor): compile time and compiled vs eager speed, side by side
    python tools/analysis/benchmark.py glnet-4g conformer-s32 --compile --shape 1x3x224x224

    # full detectors: predict on a synthetic 800x1280 image
    python tools/analysis/benchmark.py configs/maskrcnn_glnet_4g_coco.py \
        configs/maskrcnn_conformer_s16_coco.py --shape 1x3x800x1280 --repeats 5
"""
import argparse
import ast
import contextlib
import importlib
import inspect
import multiprocessing
import os
import os.path as osp
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
import glmix_mm  # noqa: E402,F401  (registers our models)
from glmix_mm.utils import build_model_from_cfg  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from upstream_glmix import import_upstream_glnet  # noqa: E402

# Backbones by name: 'module:Class' and the constructor arguments. Drop path is off everywhere
# (it only acts in train mode, and differently per model).
BACKBONES: Dict[str, Tuple[str, dict]] = {
    'glnet-stl': ('glmix_mm.models:GLNet', dict(arch='stl', out_norm=None)),
    'glnet-stl-paramslot': ('glmix_mm.models:GLNet', dict(arch='stl-paramslot', out_norm=None)),
    'glnet-4g': ('glmix_mm.models:GLNet', dict(arch='4g', out_norm=None)),
    'glnet-9g': ('glmix_mm.models:GLNet', dict(arch='9g', out_norm=None)),
    'glnet-16g': ('glmix_mm.models:GLNet', dict(arch='16g', out_norm=None)),
    'conformer-ti': ('glmix_mm.models:Conformer', dict(arch='tiny', patch_size=16)),
    'conformer-s16': ('glmix_mm.models:Conformer', dict(arch='small', patch_size=16)),
    'conformer-s32': ('glmix_mm.models:Conformer', dict(arch='small', patch_size=32)),
    'conformer-b': ('glmix_mm.models:Conformer', dict(arch='base', patch_size=16)),
    'swin-t': ('mmdet.models.backbones:SwinTransformer',
               dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7,
                    out_indices=(0, 1, 2, 3), drop_path_rate=0.)),
    'r50': ('mmdet.models.backbones:ResNet', dict(depth=50, out_indices=(0, 1, 2, 3))),
    'convnext-t': ('mmpretrain.models.backbones:ConvNeXt',
                   dict(arch='tiny', out_indices=(0, 1, 2, 3), gap_before_final_norm=False)),
}
# The authors' GLNet: our name -> the factory function in ``models/glnet.py`` of their repo.
UPSTREAM_PREFIX = 'upstream-'
UPSTREAM_GLNETS: Dict[str, str] = {
    'upstream-glnet-stl': 'glnet_stl',
    'upstream-glnet-stl-paramslot': 'glnet_stl_paramslot',
    'upstream-glnet-4g': 'glnet_4g',
    'upstream-glnet-9g': 'glnet_9g',
    'upstream-glnet-16g': 'glnet_16g',
}
AMP_DTYPES = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')
COMPILED_SUFFIX = ' (compiled)'
MIB = 1024.**2


@dataclass
class ModelSpec:
    """A model named on the command line.

    Args:
        text (str): The name as given, with its arguments.
        name (str): A key of :data:`BACKBONES` or :data:`UPSTREAM_GLNETS`, or a config path.
        kwargs (dict): Constructor arguments, or config options for a config.
        compiled (bool): The ``torch.compile`` twin of the model named ``text`` (``--compile``).
    """
    text: str
    name: str
    kwargs: dict = field(default_factory=dict)
    compiled: bool = False

    @property
    def label(self) -> str:
        """The name in the tables: ``text``, without the directories of a config, and
        :data:`COMPILED_SUFFIX` for a compiled twin."""
        label = osp.basename(self.text) if self.is_config else self.text
        return label + COMPILED_SUFFIX if self.compiled else label

    @property
    def is_config(self) -> bool:
        return self.name.endswith('.py')

    @property
    def is_upstream(self) -> bool:
        return self.name in UPSTREAM_GLNETS

    @property
    def glnet_arch(self) -> Optional[str]:
        """The GLNet arch of ours (``glnet-*``) or upstream's, else None."""
        base = self.name[len(UPSTREAM_PREFIX):] if self.is_upstream else self.name
        return base[len('glnet-'):] if base.startswith('glnet-') else None


@dataclass
class Benchmarked:
    """A built model and its step, ready to be timed."""
    spec: ModelSpec
    model: nn.Module
    step: Callable[[], Any]
    params: int
    data: Optional[dict] = None  #: a full model's preprocessed synthetic batch


@dataclass
class Result:
    """One row of the tables. Latencies in ms; ``speed_vs_ref`` is ref median / own median
    (above 1: faster than the reference); ``peak_mib`` is None when not measured;
    ``faults_per_step`` is the median count of minor page faults in a timed CPU step. For a
    compiled twin (``--compile``): ``compile_s``, the seconds of its first call; ``graph_breaks``,
    those dynamo met in it; ``vs_eager``, the eager twin's median / its own median."""
    label: str
    params_m: float
    median_ms: float
    min_ms: float
    images_per_s: float
    speed_vs_ref: float
    peak_mib: Optional[float] = None
    faults_per_step: Optional[float] = None
    compile_s: Optional[float] = None
    graph_breaks: Optional[int] = None
    vs_eager: Optional[float] = None


# ------------------------------------------------------------------------------------------------
# Parsing the command line
# ------------------------------------------------------------------------------------------------
def parse_shape(text: str) -> Tuple[int, int, int, int]:
    """``'1x3x800x1280'`` -> ``(1, 3, 800, 1280)`` (batch, channels, height, width)."""
    parts = text.lower().split('x')
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f'Bad shape {text!r}: give batch x channels x height x width as four '
                         'positive integers joined by "x", e.g. 1x3x800x1280.')
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _split_top_level(text: str, sep: str = ',') -> List[str]:
    """Split at ``sep`` outside brackets: ``'a=(1,2),b=3'`` -> ``['a=(1,2)', 'b=3']``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in '([{'
        depth -= char in ')]}'
        if char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def parse_value(text: str) -> Any:
    """A Python literal (``14``, ``None``, ``(0, 1)``, ``True``) or else the string itself."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_kwargs(items: Sequence[str]) -> dict:
    """``['mhsa_window=14', 'with_cp=True']`` -> ``{'mhsa_window': 14, 'with_cp': True}``."""
    kwargs = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'Bad argument {item!r}: expected key=value.')
        kwargs[key.strip()] = parse_value(value)
    return kwargs


def model_choices() -> List[str]:
    """Every model name that this tool knows (configs aside)."""
    return list(BACKBONES) + list(UPSTREAM_GLNETS)


def parse_model(text: str, glmix_repo: Optional[str] = None) -> ModelSpec:
    """``'glnet-4g:mhsa_window=14'`` -> a :class:`ModelSpec`; unknown names fail with the list
    of valid ones."""
    name, _, arg_text = text.partition(':')
    kwargs = parse_kwargs(_split_top_level(arg_text))
    spec = ModelSpec(text, name, kwargs)
    if spec.is_config:
        if not osp.isfile(name):
            raise ValueError(f'Config file {name!r} not found.')
    elif name not in BACKBONES and name not in UPSTREAM_GLNETS:
        raise ValueError(f'Unknown model {name!r}. Choose from {", ".join(model_choices())}, '
                         'or give a config file (*.py).')
    elif spec.is_upstream and not glmix_repo:
        raise ValueError(f'{name!r} is the authors\' GLNet: give the path of a clone of '
                         'github.com/rayleizhu/GLMix with --glmix-repo.')
    return spec


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Latency, throughput and peak memory of backbones and full models, run '
        'side by side in one process.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Models: ' + ', '.join(model_choices()) + ', or a config file. Append '
        'constructor arguments (config options for a config) after a colon: '
        'glnet-4g:mhsa_window=14.')
    parser.add_argument('models', nargs='*', metavar='MODEL',
                        help='model names or config files (see below)')
    parser.add_argument('--list', action='store_true', help='print the model names and exit')
    parser.add_argument('--mode', choices=['infer', 'train'], default='infer',
                        help='infer: forward pass without gradients, eval mode; train: forward, '
                        'scalar loss and backward, train mode, no optimizer (default: infer)')
    parser.add_argument('--infer-mode', choices=['predict', 'tensor'], default='predict',
                        help="what full models run in infer mode: 'predict' (with "
                        "post-processing) or 'tensor' (raw head outputs) (default: predict)")
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu',
                        help='where to run (default: cpu)')
    parser.add_argument('--amp', choices=list(AMP_DTYPES), default='none',
                        help='torch.autocast dtype of the forward pass (default: none, fp32)')
    parser.add_argument('--shape', default='1x3x800x1280',
                        help='input batch x channels x height x width (default: 1x3x800x1280)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed rounds before the timed ones (default: 2)')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed rounds; each model runs once per round (default: 10)')
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads (default: torch\'s choice)')
    parser.add_argument('--ref', help='reference model of the speed ratios, as listed '
                        '(default: the first model)')
    parser.add_argument('--memory', action='store_true',
                        help='CPU: measure each model\'s peak memory in a fresh process '
                        '(on CUDA peak memory is always measured)')
    parser.add_argument('--glmix-repo', help='clone of github.com/rayleizhu/GLMix, for the '
                        'upstream-glnet-* models')
    parser.add_argument('--glnet-kwargs', nargs='+', default=[], metavar='KEY=VALUE',
                        help='extra GLNet arguments for every GLNet of ours (names and '
                        'configs), e.g. mhsa_window=14')
    parser.add_argument('--profile', type=int, default=0, metavar='STEPS',
                        help='after timing, run each model STEPS more times under the PyTorch '
                        'profiler and print where its time goes (default: 0, off)')
    parser.add_argument('--top', type=int, default=10,
                        help='operators listed per model by --profile (default: 10)')
    parser.add_argument('--seed', type=int, default=0, help='seed of weights and input')
    parser.add_argument('--compile', action='store_true',
                        help='also time every model compiled with torch.compile, in the same '
                        'alternating rounds; reports compile time (first call), graph breaks and '
                        'the speed relative to eager')
    parser.add_argument('--compile-backend', default='inductor',
                        help='torch.compile backend (default: inductor; eager / aot_eager only '
                        'capture the graph, for checks)')
    parser.add_argument('--compile-mode', choices=COMPILE_MODES,
                        help='torch.compile mode (default: PyTorch\'s, "default")')
    parser.add_argument('--dynamic', action='store_true',
                        help='torch.compile(dynamic=True): symbolic sizes from the first call')
    parser.add_argument('--markdown', action='store_true',
                        help='also print a markdown table with the machine')
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except ValueError as error:
        parser.error(str(error))
    return args


def check_args(args: argparse.Namespace) -> None:
    """Validate the arguments; fills ``args.specs``, ``args.shape_tuple`` and
    ``args.glnet_kwargs_dict``. Raises ``ValueError`` with a message for the user."""
    if args.list:
        args.specs = []
        return
    if not args.models:
        raise ValueError('Name at least one model: ' + ', '.join(model_choices()) +
                         ', or a config file.')
    args.shape_tuple = parse_shape(args.shape)
    args.glnet_kwargs_dict = parse_kwargs(args.glnet_kwargs)
    args.specs = [parse_model(m, args.glmix_repo) for m in args.models]
    labels = [s.label for s in args.specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f'A model is listed twice: {labels}.')
    if (args.compile_mode or args.dynamic) and not args.compile:
        raise ValueError('--compile-mode and --dynamic set how models are compiled: add '
                         '--compile.')
    if args.compile:
        args.specs = [twin for spec in args.specs
                      for twin in (spec, ModelSpec(spec.text, spec.name, spec.kwargs, True))]
    if args.ref is not None:
        matches = [s.label for s in args.specs if args.ref in (s.text, s.label)]
        if not matches:
            raise ValueError(f'--ref {args.ref!r} is not among the models {labels}.')
        args.ref = matches[0]
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda, but torch.cuda.is_available() is False (a CPU build of '
                         f'torch {torch.__version__}, or no GPU visible).')
    for spec in args.specs:
        if spec.name in BACKBONES:
            backbone_class_and_kwargs(spec, args.glnet_kwargs_dict)
    if args.warmup < 0 or args.repeats < 1:
        raise ValueError('--warmup must be >= 0 and --repeats >= 1.')
    if args.profile < 0 or args.top < 1:
        raise ValueError('--profile must be >= 0 and --top >= 1.')
    if args.threads is not None and args.threads < 1:
        raise ValueError('--threads must be >= 1.')


# ------------------------------------------------------------------------------------------------
# Building models
# ------------------------------------------------------------------------------------------------
def _import_object(path: str) -> Any:
    module, _, name = path.partition(':')
    return getattr(importlib.import_module(module), name)


def _check_kwargs(cls: type, kwargs: dict, label: str) -> None:
    """Refuse arguments that ``cls`` does not take, naming the ones it does."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        valid = [p for p in params if p != 'self']
        raise ValueError(f'{label}: {cls.__name__} has no argument {", ".join(unknown)} (in this '
                         f'version); it takes {", ".join(valid)}.')


def backbone_class_and_kwargs(spec: ModelSpec, glnet_kwargs: Optional[dict] = None
                              ) -> Tuple[type, dict]:
    """The class of a :data:`BACKBONES` entry and its arguments: the defaults, then
    ``glnet_kwargs`` (GLNet only), then the spec's; arguments the class lacks are refused."""
    path, defaults = BACKBONES[spec.name]
    cls = _import_object(path)
    kwargs = dict(defaults)
    if spec.glnet_arch is not None:
        kwargs.update(glnet_kwargs or {})
    kwargs.update(spec.kwargs)
    _check_kwargs(cls, kwargs, spec.label)
    return cls, kwargs


def build_backbone(spec: ModelSpec, glnet_kwargs: Optional[dict] = None) -> nn.Module:
    """One of :data:`BACKBONES`, with the spec's arguments (and ``glnet_kwargs`` for GLNet)."""
    cls, kwargs = backbone_class_and_kwargs(spec, glnet_kwargs)
    return cls(**kwargs)


class UpstreamGLNetFeatures(nn.Module):
    """The four stage outputs of the authors' GLNet (its head and final norm dropped).

    Keeps the upstream modules under their own names (``downsample_layers``, ``stages``), which
    are ours too, so that its state dict loads into our :class:`GLNet`.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.downsample_layers = net.downsample_layers
        self.stages = net.stages

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
            outs.append(x)
        return tuple(outs)


def build_upstream(spec: ModelSpec, repo: str) -> nn.Module:
    """The authors' GLNet of ``spec``'s arch, as its four stage outputs."""
    factory = getattr(import_upstream_glnet(repo), UPSTREAM_GLNETS[spec.name])
    with contextlib.redirect_stdout(sys.stderr):  # it prints its unused arguments
        net = factory(**spec.kwargs)
    return UpstreamGLNetFeatures(net)


def load_config(spec: ModelSpec, glnet_kwargs: Optional[dict] = None):
    """The config of ``spec`` with its options and the GLNet arguments applied."""
    from mmengine.config import Config
    cfg = Config.fromfile(spec.name)
    if spec.kwargs:
        cfg.merge_from_dict(spec.kwargs)
    backbone = cfg.model.get('backbone', {})
    if glnet_kwargs and backbone.get('type') in ('GLNet', 'glmix_mm.GLNet'):
        backbone.update(glnet_kwargs)
    return cfg


def build_full_model(spec: ModelSpec, glnet_kwargs: Optional[dict] = None
                     ) -> Tuple[nn.Module, str]:
    """The model of a config (no checkpoint is loaded: ``init_weights`` is not called) and its
    scope (``mmdet``, ``mmseg`` or ``mmpretrain``)."""
    cfg = load_config(spec, glnet_kwargs)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg', 'mmpretrain'):
        raise ValueError(f'{spec.label}: default_scope {scope!r} is none of mmdet, mmseg, '
                         'mmpretrain.')
    return build_model_from_cfg(cfg), scope


# ------------------------------------------------------------------------------------------------
# Synthetic data and steps
# ------------------------------------------------------------------------------------------------
def _det_samples(model: nn.Module, shape: Sequence[int]) -> dict:
    from mmdet.testing import demo_mm_inputs
    batch, channels, height, width = shape
    # The classes of the heads (the RPN's single class aside); demo labels are in 1..n-1.
    num_classes = min((m.num_classes for m in model.modules()
                       if isinstance(getattr(m, 'num_classes', None), int) and
                       m.num_classes > 1), default=2)
    return demo_mm_inputs(batch_size=batch, image_shapes=(channels, height, width),
                          num_items=[5] * batch, num_classes=num_classes,
                          with_mask=getattr(model, 'with_mask', False))


def _seg_samples(model: nn.Module, shape: Sequence[int]) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    batch, channels, height, width = shape
    num_classes = model.decode_head.num_classes
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, height, width)))
        samples.append(sample)
    return dict(inputs=_random_images(shape), data_samples=samples)


def _cls_samples(model: nn.Module, shape: Sequence[int]) -> dict:
    from mmpretrain.structures import DataSample
    num_classes = getattr(model.head, 'num_classes', 1000)
    samples = [DataSample().set_gt_label(int(torch.randint(0, num_classes, ())))
               for _ in range(shape[0])]
    return dict(inputs=_random_images(shape), data_samples=samples)


def _random_images(shape: Sequence[int]) -> List[torch.Tensor]:
    batch, channels, height, width = shape
    return [torch.randint(0, 256, (channels, height, width), dtype=torch.uint8)
            for _ in range(batch)]


SAMPLE_MAKERS = {'mmdet': _det_samples, 'mmseg': _seg_samples, 'mmpretrain': _cls_samples}


def synthetic_batch(model: nn.Module, scope: str, shape: Sequence[int], training: bool) -> dict:
    """Random images with random ground truth, through the model's data preprocessor."""
    data = SAMPLE_MAKERS[scope](model, shape)
    return model.data_preprocessor(data, training)


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


def make_input(shape: Sequence[int], device: str, seed: int = 0) -> torch.Tensor:
    """The backbones' input: standard normal values (like normalised images)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen).to(device)


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


# ------------------------------------------------------------------------------------------------
# Timing and memory
# ------------------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def _minor_page_faults() -> Optional[int]:
    """Minor page faults of this process so far (None where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Step(NamedTuple):
    """One timed step: latency (s); on CUDA the memory beyond what was allocated before it
    (MiB); on the CPU the minor page faults during it (first touches of fresh memory)."""
    seconds: float
    peak_mib: Optional[float]
    page_faults: Optional[int]


def timed_run(entry: Benchmarked, device: str) -> Step:
    """Run one step of ``entry`` and measure it."""
    before = 0
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    faults = _minor_page_faults() if device == 'cpu' else None
    start = time.perf_counter()
    try:
        entry.step()
        _sync(device)
    except Exception as error:
        raise RuntimeError(f'{entry.spec.label} failed: {type(error).__name__}: {error}') \
            from error
    elapsed = time.perf_counter() - start
    if faults is not None:
        faults = _minor_page_faults() - faults
    peak = (torch.cuda.max_memory_allocated() - before) / MIB if device == 'cuda' else None
    return Step(elapsed, peak, faults)


class FirstCall(NamedTuple):
    """The first call of a compiled twin: its seconds (compile time) and the graph breaks
    dynamo met in it."""
    seconds: float
    graph_breaks: int


def _graph_breaks_so_far() -> int:
    from torch._dynamo.utils import counters
    return sum(counters['graph_break'].values())


def first_calls(entries: Sequence[Benchmarked], device: str) -> Dict[str, FirstCall]:
    """Call each compiled twin once (this compiles it), timed, before the rounds."""
    calls = {}
    for entry in (e for e in entries if e.spec.compiled):
        breaks = _graph_breaks_so_far()
        step = timed_run(entry, device)
        calls[entry.spec.label] = FirstCall(step.seconds, _graph_breaks_so_far() - breaks)
    return calls


class Rounds(NamedTuple):
    """Per label: the timed latencies (s), on CUDA the largest per-step memory (MiB), on the
    CPU the page faults of each timed step."""
    times: Dict[str, List[float]]
    peaks: Dict[str, Optional[float]]
    page_faults: Dict[str, List[int]]


def run_rounds(entries: Sequence[Benchmarked], device: str, warmup: int,
               repeats: int) -> Rounds:
    """Alternate the models: every round runs each once, the order rotated by one per round."""
    rounds = Rounds({e.spec.label: [] for e in entries}, {e.spec.label: None for e in entries},
                    {e.spec.label: [] for e in entries})
    for round_index in range(warmup + repeats):
        shift = round_index % len(entries)
        for entry in list(entries[shift:]) + list(entries[:shift]):
            step = timed_run(entry, device)
            if round_index < warmup:
                continue
            label = entry.spec.label
            rounds.times[label].append(step.seconds)
            if step.peak_mib is not None:
                rounds.peaks[label] = max(step.peak_mib, rounds.peaks[label] or 0.)
            if step.page_faults is not None:
                rounds.page_faults[label].append(step.page_faults)
    return rounds


def summarize(entries: Sequence[Benchmarked],
              times: Dict[str, List[float]],
              batch: int,
              ref: str,
              peaks: Optional[Dict[str, Optional[float]]] = None,
              page_faults: Optional[Dict[str, List[int]]] = None,
              compiles: Optional[Dict[str, FirstCall]] = None) -> List[Result]:
    """Rows of the tables, with speeds relative to ``ref`` and, for compiled twins, to their
    eager models."""
    ref_median = statistics.median(times[ref])
    rows = []
    for entry in entries:
        label = entry.spec.label
        median = statistics.median(times[label])
        faults = (page_faults or {}).get(label)
        row = Result(label=label, params_m=entry.params / 1e6, median_ms=median * 1e3,
                     min_ms=min(times[label]) * 1e3, images_per_s=batch / median,
                     speed_vs_ref=ref_median / median, peak_mib=(peaks or {}).get(label),
                     faults_per_step=statistics.median(faults) if faults else None)
        first = (compiles or {}).get(label)
        if first is not None:
            eager = times[label[:-len(COMPILED_SUFFIX)]]
            row.compile_s, row.graph_breaks = first.seconds, first.graph_breaks
            row.vs_eager = statistics.median(eager) / median
        rows.append(row)
    return rows


def _proc_status_kib(key: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the resident-set high-water mark (Linux >= 4.0); False where impossible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss_kib() -> int:
    hwm = _proc_status_kib('VmHWM')
    if hwm is not None:
        return hwm
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == 'darwin' else peak  # bytes on macOS


def measure_cpu_memory(args: argparse.Namespace, spec: ModelSpec) -> float:
    """In this process: peak RSS of one step beyond the RSS after building (MiB).

    Meant for a fresh process (:func:`memory_in_subprocess`). Where the high-water mark cannot be
    reset, earlier peaks (imports, building) can hide the step's. A compiled twin is compiled and
    called once first, and its second call is measured.
    """
    x = make_input(args.shape_tuple, 'cpu', args.seed)
    entry = build_benchmarked(spec, args, x)
    if spec.compiled:  # the step of the compiled code, not the compilation
        entry = compiled_twin(entry, args, x)
        entry.step()
    baseline = _proc_status_kib('VmRSS')
    if not _reset_peak_rss() or baseline is None:
        print('warning: cannot reset the peak RSS; the figure may include building',
              file=sys.stderr)
        baseline = baseline or 0
    entry.step()
    return max(_peak_rss_kib() - baseline, 0) / 1024.


def _memory_worker(args: argparse.Namespace, label: str, queue) -> None:
    """Spawned process: measure ``label`` and put (label, MiB or error text) on ``queue``."""
    try:
        _apply_threads(args.threads)
        spec = next(s for s in args.specs if s.label == label)
        queue.put((label, measure_cpu_memory(args, spec)))
    except Exception as error:  # reported by the parent
        queue.put((label, f'{type(error).__name__}: {error}'))


def memory_in_subprocess(args: argparse.Namespace, label: str) -> Optional[float]:
    """Peak memory of one step of ``label`` (MiB), measured in a fresh spawned process."""
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    process = context.Process(target=_memory_worker, args=(args, label, queue))
    process.start()
    try:
        _, value = queue.get()
    finally:
        process.join()
    if isinstance(value, str):
        print(f'warning: memory of {label} not measured: {value}', file=sys.stderr)
        return None
    return value


def _apply_threads(threads: Optional[int]) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------------
# Profiling
# ------------------------------------------------------------------------------------------------
# Operators whose own (self) time is a convolution, matrix-multiply or fused-attention kernel.
CONV_OPS = ('aten::mkldnn_convolution', 'aten::cudnn_convolution', 'aten::_slow_conv2d_forward',
            'aten::thnn_conv2d', 'aten::_nnpack_spatial_convolution')
MATMUL_OPS = ('aten::addmm', 'aten::mm', 'aten::bmm', 'aten::baddbmm', 'aten::_addmm_activation')
ATTENTION_PREFIX = 'aten::_scaled_dot_product_'
KERNEL_CLASSES = ('dense convolution', 'depth-wise convolution', 'matmul', 'fused attention',
                  'everything else')


@dataclass
class OperatorTime:
    """Self time of one operator with one set of input shapes, per step."""
    name: str
    shapes: str
    calls: float
    ms: float
    kind: str


def kernel_class(name: str, shapes: Sequence[Sequence[int]]) -> str:
    """Which of :data:`KERNEL_CLASSES` an operator's self time belongs to."""
    if name in CONV_OPS:
        weight = shapes[1] if len(shapes) > 1 else []
        depthwise = len(weight) == 4 and weight[1] == 1 and shapes[0][1] > 1
        return 'depth-wise convolution' if depthwise else 'dense convolution'
    if name in MATMUL_OPS:
        return 'matmul'
    if name.startswith(ATTENTION_PREFIX) and name != 'aten::scaled_dot_product_attention':
        return 'fused attention'
    return 'everything else'


def profile_entry(entry: Benchmarked, device: str, steps: int) -> List[OperatorTime]:
    """Run ``entry`` ``steps`` times under the PyTorch profiler; per-step self time of every
    operator and input shapes (device time on CUDA, CPU time otherwise), largest first."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(steps):
            entry.step()
        _sync(device)
    rows = []
    for event in prof.key_averages(group_by_input_shape=True):
        us = (getattr(event, 'self_device_time_total', 0)
              if device == 'cuda' else event.self_cpu_time_total)
        if us > 0:
            shapes = [list(s) for s in event.input_shapes or []]
            rows.append(OperatorTime(event.key, str([s for s in shapes if s]), event.count / steps,
                                     us / steps / 1e3, kernel_class(event.key, shapes)))
    return sorted(rows, key=lambda r: -r.ms)


def format_profile(label: str, rows: Sequence[OperatorTime], steps: int, top: int,
                   device: str) -> str:
    """Time per kernel class and the ``top`` operators of one model's profile."""
    total = sum(r.ms for r in rows) or 1.
    clock = 'device' if device == 'cuda' else 'CPU'
    lines = [f'Profile of {label} ({steps} steps; operator self {clock} time per step, '
             f'{total:.1f} ms in all):']
    for kind in KERNEL_CLASSES:
        ms = sum(r.ms for r in rows if r.kind == kind)
        lines.append(f'  {kind:24s} {ms:9.1f} ms  {100 * ms / total:5.1f}%')
    lines.append(f'  top {top} operators (ms per step, calls per step, input shapes):')
    for r in rows[:top]:
        lines.append(f'  {r.ms:9.2f} {r.calls:6.1f}  {r.name}  {r.shapes[:90]}')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------
def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str) -> Dict[str, str]:
    """What ran the benchmark: device name, CPU, threads, versions."""
    info = {
        'CPU': f'{cpu_name()} ({os.cpu_count()} logical CPUs)',
        'torch threads': str(torch.get_num_threads()),
        'torch': torch.__version__,
        'Python': platform.python_version(),
    }
    if device == 'cuda':
        info['GPU'] = f'{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})'
    return info


def describe_run(args: argparse.Namespace) -> str:
    dtype = 'fp32' if args.amp == 'none' else f'autocast {args.amp}'
    what = args.mode
    if args.mode == 'infer' and any(s.is_config for s in args.specs):
        what += f' ({args.infer_mode} for full models)'
    text = (f'{what}, input {args.shape}, {dtype}, {args.device}, {args.warmup} warm-up + '
            f'{args.repeats} timed rounds, alternating')
    if args.compile:
        options = ', '.join(f'{k}={v!r}' for k, v in compile_options(args).items())
        text += f'; compiled twins: torch.compile({options})'
    return text


def speed_text(ratio: float, is_ref: bool) -> str:
    if is_ref:
        return '1.00x (ref)'
    return f'{ratio:.2f}x faster' if ratio >= 1 else f'{1 / ratio:.2f}x slower'


def _columns(rows: Sequence[Result], ref: str) -> Tuple[List[str], List[List[str]]]:
    header = ['model', 'params (M)', 'median (ms)', 'min (ms)', 'images/s',
              f'speed vs {ref}', 'peak mem (MiB)']
    body = [[r.label, f'{r.params_m:.1f}', f'{r.median_ms:.1f}', f'{r.min_ms:.1f}',
             f'{r.images_per_s:.2f}', speed_text(r.speed_vs_ref, r.label == ref),
             '-' if r.peak_mib is None else f'{r.peak_mib:.0f}'] for r in rows]
    if any(r.compile_s is not None for r in rows):
        header += ['compile (s)', 'graph breaks', 'vs eager']
        for line, r in zip(body, rows):
            line += ['-', '-', '-'] if r.compile_s is None else [
                f'{r.compile_s:.1f}', str(r.graph_breaks), speed_text(r.vs_eager, False)]
    return header, body


def format_table(rows: Sequence[Result], ref: str) -> str:
    """A plain-text table, columns aligned."""
    header, body = _columns(rows, ref)
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths)))
             for line in [header] + body]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def format_markdown(rows: Sequence[Result], ref: str, args: argparse.Namespace,
                    info: Dict[str, str]) -> str:
    """A markdown table, preceded by the machine and the settings."""
    header, body = _columns(rows, ref)
    machine = '; '.join(f'{k}: {v}' for k, v in info.items())
    lines = [f'Machine: {machine}.', f'Run: {describe_run(args)}.', '',
             '| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---'] + ['--:'] * (len(header) - 1)) + '|']
    lines += ['| ' + ' | '.join(line) + ' |' for line in body]
    return '\n'.join(lines)


def print_report(rows: Sequence[Result], ref: str, args: argparse.Namespace,
                 diffs: Dict[Tuple[str, str], float]) -> None:
    info = machine_info(args.device)
    print('Machine: ' + '; '.join(f'{k}: {v}' for k, v in info.items()))
    print(f'Run: {describe_run(args)}')
    print(f'speed vs {ref} = its median latency / the model\'s median latency '
          '(above 1: faster than the reference)')
    print(format_table(rows, ref))
    if args.compile:
        print('compile (s) = the first call of the compiled twin (tracing, graph capture, code '
              'generation), not timed in the rounds; vs eager = the eager twin\'s median / the '
              'compiled median')
    faults = [f'{r.label} {r.faults_per_step:.0f}' for r in rows if r.faults_per_step is not None]
    if faults:
        print('minor page faults per timed step (median; first touches of memory fresh from the '
              'OS): ' + ', '.join(faults))
    for (ours, theirs), diff in diffs.items():
        print(f'{ours} with the weights of {theirs}: largest relative output difference '
              f'{diff:.1e}')
    if args.markdown:
        print()
        print(format_markdown(rows, ref, args, info))


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------
def benchmark(args: argparse.Namespace
              ) -> Tuple[List[Result], Dict[Tuple[str, str], float]]:
    """Build every model of ``args.specs`` (and compile the twins of ``--compile``), share
    upstream weights, alternate the runs, measure the memory; return the rows and the output
    differences of shared-weight pairs."""
    _apply_threads(args.threads)
    x = make_input(args.shape_tuple, args.device, args.seed)
    entries = build_entries(args, x)
    diffs = share_upstream_weights(entries, x, args.amp)
    compiles = first_calls(entries, args.device)
    times, peaks, page_faults = run_rounds(entries, args.device, args.warmup, args.repeats)
    for entry in entries if args.profile else []:
        print(format_profile(entry.spec.label, profile_entry(entry, args.device, args.profile),
                             args.profile, args.top, args.device) + '\n')
    if args.memory and args.device == 'cpu':
        peaks = {e.spec.label: memory_in_subprocess(args, e.spec.label) for e in entries}
    ref = args.ref or entries[0].spec.label
    rows = summarize(entries, times, args.shape_tuple[0], ref, peaks, page_faults, compiles)
    return rows, diffs


def main(argv: Optional[Sequence[str]] = None) -> List[Result]:
    args = parse_args(argv)
    if args.list:
        print('\n'.join(model_choices()))
        return []
    rows, diffs = benchmark(args)
    print_report(rows, args.ref or rows[0].label, args, diffs)
    return rows


if __name__ == '__main__':
    main()
