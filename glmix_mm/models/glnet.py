"""GLNet: a four-stage hierarchical backbone built from GLMix blocks (NeurIPS 2024).

The architectures of the released ImageNet models are in :attr:`GLNet.arch_zoo`; the module and
parameter names follow the released checkpoints so that they load as they are.
"""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, trunc_normal_init

from glmix_mm.checkpoint import StateDict, load_pretrained
from glmix_mm.registry import register_model

from . import cpu_blocking
from .argument_checks import check_drop_path_rate, check_norm_cfg, check_out_indices, is_int
from .freezing import batch_norms_to_eval, freeze
from .glmix import GLMixBlock, MHSABlock, MHSATokenBlock
from .layers import check_window

# Token mixers of a stage: every block GLMix, every block MHSA on NCHW maps, every block a plain
# transformer block on tokens (last stage of the STL layout), or GLMix and MHSA alternating,
# GLMix first (the hybrid third stage of the 4G/9G/16G layout).
MIXERS = ('glmix', 'mhsa', 'mhsa_tokens', 'glmix+mhsa')
# The two layouts of the released models: the Swin-like STL one (non-overlapping patch
# embeddings, plain token blocks in the last stage) and the one of the 4G/9G/16G family
# (overlapping patch embeddings, convolutional position encoding, hybrid third stage), which
# only differ in width (``embed_dims``) and, for 16G, layer scale.
_STL_LAYOUT = dict(
    depths=[2, 2, 6, 2], embed_dims=[96, 192, 384, 768], mlp_ratios=[4, 4, 4, 4],
    mixers=['glmix', 'glmix', 'glmix', 'mhsa_tokens'], slot_init='ada_avgpool',
    patch_embed='non_overlapped', cpe_kernel=0, mlp_dwconv=False, layer_scale=None)
_G_LAYOUT = dict(
    depths=[4, 4, 18, 4], embed_dims=None, mlp_ratios=[3, 3, 3, 3],
    mixers=['glmix', 'glmix', 'glmix+mhsa', 'mhsa'], slot_init='ada_avgpool',
    patch_embed='overlapped', cpe_kernel=3, mlp_dwconv=True, layer_scale=None)
# How GLNet runs (see its ``execution`` argument).
EXECUTIONS = ('auto', 'plain')
# The parts of the released ImageNet classifiers that the backbone does not have (the pre-head
# norm, the head, the token-labeling head) and their names in an MMPretrain ImageClassifier.
CLASSIFIER_PARTS = {
    'norm.': 'backbone.norm3.',
    'head.': 'head.fc.',
    'tklb_aux_head.': 'head.aux_fc.'
}


def backbone_weights(state_dict: StateDict) -> StateDict:
    """The weights of a released GLNet classifier (upstream names) without its
    :data:`CLASSIFIER_PARTS`: those of the backbone."""
    return {k: v for k, v in state_dict.items() if not k.startswith(tuple(CLASSIFIER_PARTS))}


class GLNetStage(BaseModule):
    """A sequence of blocks at one resolution.

    Args:
        blocks (list[nn.Module]): The blocks, applied in order.
        token_blocks (bool): The blocks take channels-last ``(B, H, W, C)`` maps instead of
            NCHW maps.
        with_cp (bool): Checkpoint each block's activations when gradients flow.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 blocks: List[nn.Module],
                 token_blocks: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.blocks = nn.ModuleList(blocks)
        self.token_blocks = token_blocks
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor, cache_blocking: bool = False) -> torch.Tensor:
        """Apply the blocks to the NCHW map ``x``; ``cache_blocking``: run them with
        :mod:`~glmix_mm.models.cpu_blocking` (eager CPU inference, same results)."""
        if self.token_blocks:
            x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            if cache_blocking:
                x = cpu_blocking.block_forward(block, x)
            elif self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x.permute(0, 3, 1, 2) if self.token_blocks else x


def _overlapped_patch_embeds(embed_dims: Sequence[int], in_channels: int,
                             norm_cfg: dict) -> nn.ModuleList:
    """Stem of two stride-2 3x3 convs, then a stride-2 3x3 conv + norm before each stage.

    Index 0 of the stem is a placeholder (an optional input norm upstream that no released model
    uses), kept so that parameter names match the released checkpoints.
    """
    stem = nn.Sequential(
        nn.Identity(),
        nn.Conv2d(in_channels, embed_dims[0] // 2, 3, stride=2, padding=1),
        build_norm_layer(norm_cfg, embed_dims[0] // 2)[1],
        nn.GELU(),
        nn.Conv2d(embed_dims[0] // 2, embed_dims[0], 3, stride=2, padding=1),
        build_norm_layer(norm_cfg, embed_dims[0])[1],
    )
    return nn.ModuleList([stem] + [
        nn.Sequential(
            nn.Conv2d(embed_dims[i], embed_dims[i + 1], 3, stride=2, padding=1),
            build_norm_layer(norm_cfg, embed_dims[i + 1])[1]) for i in range(3)
    ])


def _non_overlapped_patch_embeds(embed_dims: Sequence[int], in_channels: int,
                                 norm_cfg: dict) -> nn.ModuleList:
    """4x4 stride-4 conv + norm stem, then norm + 2x2 stride-2 conv before each stage."""
    stem = nn.Sequential(
        nn.Conv2d(in_channels, embed_dims[0], 4, stride=4),
        build_norm_layer(norm_cfg, embed_dims[0])[1])
    return nn.ModuleList([stem] + [
        nn.Sequential(
            build_norm_layer(norm_cfg, embed_dims[i])[1],
            nn.Conv2d(embed_dims[i], embed_dims[i + 1], 2, stride=2)) for i in range(3)
    ])


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the bottom and right of an NCHW map to a multiple of ``multiple`` (padding by
    zero rows is a copy: no branch on the size, so that captured graphs pad at every size)."""
    if multiple == 1:
        return x
    return F.pad(x, (0, (-x.shape[3]) % multiple, 0, (-x.shape[2]) % multiple))


@register_model
class GLNet(BaseModule):
    """GLNet backbone ("Revisiting the Integration of Convolution and Attention for Vision
    Backbone", NeurIPS 2024), for dense prediction and classification.

    Four stages at strides 4, 8, 16 and 32. Each returned map can pass through its own norm
    (``out_norm``); with ``out_norm=None`` the raw stage outputs are returned, which are exactly
    the stage outputs of the upstream ImageNet model.

    Args:
        arch (str | dict): A name in :attr:`arch_zoo` (``'stl'``, ``'stl-paramslot'``, ``'4g'``,
            ``'9g'``, ``'16g'``; ``'4g_tklb'`` / ``'9g_tklb'`` are the 4G / 9G layouts of the
            token-labeling checkpoints) or a dict with the keys of an ``arch_zoo`` entry
            (``head_dim``, ``num_slots``, ``local_kernel`` are optional).
        in_channels (int): Input channels. Defaults to 3.
        out_indices (int | Sequence[int]): Stages whose outputs are returned (negative indices
            count from the last stage). Defaults to (0, 1, 2, 3).
        out_norm (dict, optional): Norm config applied to each returned map (one norm layer
            ``norm{i}`` per output, not part of the ImageNet checkpoints). Defaults to
            ``dict(type='LN2d', eps=1e-6)``; None returns the raw stage outputs.
        norm_cfg (dict): Norm config of the patch embeddings. Defaults to ``dict(type='BN')``
            (use ``dict(type='SyncBN')`` for multi-GPU training).
        drop_path_rate (float): Stochastic depth rate, linearly increasing over the blocks.
        frozen_stages (int): -1 freezes nothing; 0 freezes the stem (first patch embedding);
            ``k >= 1`` freezes the stem, the first ``k`` stages, the patch embeddings before them
            and their output norms (parameters fixed and modules kept in eval mode).
        norm_eval (bool): Keep every BatchNorm in eval mode (frozen statistics) while training.
        with_cp (bool): Activation checkpointing of every block (saves memory, costs time).
        mhsa_window (int, optional): None (default, as published): the MHSA blocks (those of
            the hybrid third stage and of the last stage) attend globally. An int ``w``: they
            attend inside non-overlapping ``w`` x ``w`` windows (maps padded to whole windows,
            padding masked), same weights, cost linear in the number of pixels; global context
            still flows through the GLMix blocks' slots. Maps no larger than ``w`` x ``w`` get
            exactly the global result (``w=14`` is global at 224x224 input).
        channels_last (bool): Run the blocks in channels-last memory layout: same results,
            faster (contiguous channel vectors for the LayerNorms, token views without copies,
            fused attention kernels). The returned maps are contiguous NCHW either way.
            Defaults to True.
        execution (str): How the model is run; the results are the same. ``'auto'`` (default):
            eager CPU inference (eval mode, no autograd recording, no forward hooks, no graph
            capture) runs cache-blocked (:mod:`~glmix_mm.models.cpu_blocking`: chunks sized to
            stay in cache), everything else runs the plain model. ``'plain'``: always the plain
            model, as written in :mod:`~glmix_mm.models.glmix`.
        pretrained (str, optional): Deprecated, use ``init_cfg=dict(type='Pretrained',
            checkpoint=...)``.
        init_cfg (dict, optional): Initialisation config. With ``type='Pretrained'``, loads the
            released upstream checkpoints as they are (weights under ``model``, or ``model_ema``
            for 16G; classification head and final norm ignored), OpenMMLab checkpoints with a
            ``backbone.`` prefix, and our converted files; anything else is refused with a report
            of the mismatching keys (``allow_partial=True`` in ``init_cfg``: the tensors that fit
            are loaded and the rest reported, for inspection tools, never for training).
    """
    arch_zoo: Dict[str, dict] = {
        'stl': _STL_LAYOUT,
        'stl-paramslot': dict(_STL_LAYOUT, slot_init='param'),
        '4g': dict(_G_LAYOUT, embed_dims=[64, 128, 256, 512]),
        '9g': dict(_G_LAYOUT, embed_dims=[96, 192, 384, 768]),
        '16g': dict(_G_LAYOUT, embed_dims=[128, 256, 512, 1024], layer_scale=1e-4),
    }
    arch_aliases = {'4g_tklb': '4g', '9g_tklb': '9g'}
    arch_defaults = dict(head_dim=32, num_slots=64, local_kernel=5)
    # Container key of the released checkpoint's published weights, where not ``model``.
    released_weights_key = {'16g': 'model_ema'}

    def __init__(self,
                 arch: Union[str, dict] = '4g',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 out_norm: Optional[dict] = dict(type='LN2d', eps=1e-6),
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 mhsa_window: Optional[int] = None,
                 channels_last: bool = True,
                 execution: str = 'auto',
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if pretrained is not None:
            warnings.warn('`pretrained` is deprecated, use `init_cfg=dict(type="Pretrained", '
                          'checkpoint=...)`.', DeprecationWarning)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.arch_name, self.arch_settings = self._parse_arch(arch)
        settings = self.arch_settings
        out_indices = check_out_indices(out_indices, 4)
        if not is_int(frozen_stages) or frozen_stages not in range(-1, 5):
            raise ValueError(f'frozen_stages must be an int in -1..4, got {frozen_stages!r}.')
        if not is_int(in_channels) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}.')
        check_drop_path_rate(drop_path_rate)
        check_norm_cfg(norm_cfg, 'norm_cfg')
        if out_norm is not None:
            check_norm_cfg(out_norm, 'out_norm')
        self.in_channels = in_channels
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.mhsa_window = check_window(mhsa_window)
        if execution not in EXECUTIONS:
            raise ValueError(f'execution must be one of {EXECUTIONS}, got {execution!r}.')
        self.execution = execution
        self.channels_last = channels_last
        embed_dims = settings['embed_dims']
        self.out_channels = [embed_dims[i] for i in self.out_indices]

        if settings['patch_embed'] == 'overlapped':
            self.downsample_layers = _overlapped_patch_embeds(embed_dims, in_channels, norm_cfg)
            self.pad_multiples = (1, 1, 1, 1)  # padded convolutions take any size
        else:
            self.downsample_layers = _non_overlapped_patch_embeds(embed_dims, in_channels,
                                                                  norm_cfg)
            self.pad_multiples = (4, 2, 2, 2)  # pad to whole patches instead of cropping

        self.stem_elements = cpu_blocking.stem_elements_per_pixel(self.downsample_layers[0])
        drop_path_rates = torch.linspace(0, drop_path_rate, sum(settings['depths'])).tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(settings['depths']):
            first = sum(settings['depths'][:i])
            self.stages.append(
                self._make_stage(i, drop_path_rates[first:first + depth], with_cp))
        for i in self.out_indices:
            norm = nn.Identity() if out_norm is None else build_norm_layer(
                out_norm, embed_dims[i])[1]
            self.add_module(f'norm{i}', norm)

        self.apply(self._init_default)
        if channels_last:
            self._store_channels_last()
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> Tuple[str, dict]:
        if isinstance(arch, str):
            name = cls.arch_aliases.get(arch, arch)
            if name not in cls.arch_zoo:
                raise ValueError(f'Unknown GLNet arch {arch!r}; choose one of '
                                 f'{sorted(cls.arch_zoo) + sorted(cls.arch_aliases)} or give a '
                                 'dict with the keys of an arch_zoo entry.')
            return name, {**cls.arch_defaults, **cls.arch_zoo[name]}
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}.')
        required = set(cls.arch_zoo['4g'])
        missing, unknown = required - set(arch), set(arch) - required - set(cls.arch_defaults)
        if missing or unknown:
            raise ValueError(f'Custom GLNet arch: missing keys {sorted(missing)}, unknown keys '
                             f'{sorted(unknown)}; expected {sorted(required)} and optionally '
                             f'{sorted(cls.arch_defaults)}.')
        bad = [m for m in arch['mixers'] if m not in MIXERS]
        if bad or len(arch['mixers']) != 4:
            raise ValueError(f'mixers must be 4 of {MIXERS}, got {arch["mixers"]}.')
        if arch['patch_embed'] not in ('overlapped', 'non_overlapped'):
            raise ValueError("patch_embed must be 'overlapped' or 'non_overlapped', got "
                             f'{arch["patch_embed"]!r}.')
        settings = {**cls.arch_defaults, **arch}
        for key in ('depths', 'embed_dims', 'mlp_ratios'):
            if not isinstance(settings[key], Sequence) or len(settings[key]) != 4:
                raise ValueError(f'Custom GLNet arch: {key} must list 4 values, one per stage, '
                                 f'got {settings[key]!r}.')
        bad_dims = [d for d in settings['embed_dims'] if d % settings['head_dim']]
        if bad_dims:
            raise ValueError(f'Custom GLNet arch: head_dim {settings["head_dim"]} must divide '
                             f'every embed_dims entry, not {bad_dims}.')
        return 'custom', settings

    def _make_stage(self, index: int, drop_path_rates: List[float],
                    with_cp: bool) -> GLNetStage:
        settings = self.arch_settings
        dims = settings['embed_dims'][index]
        common = dict(
            embed_dims=dims,
            num_heads=dims // settings['head_dim'],
            mlp_ratio=settings['mlp_ratios'][index],
            layer_scale=settings['layer_scale'])
        mixer = settings['mixers'][index]
        if mixer == 'mhsa_tokens':
            blocks = [
                MHSATokenBlock(**common, drop_path=dpr, window=self.mhsa_window)
                for dpr in drop_path_rates
            ]
            return GLNetStage(blocks, token_blocks=True, with_cp=with_cp)
        conv_common = dict(
            common, mlp_dwconv=settings['mlp_dwconv'], cpe_kernel=settings['cpe_kernel'])
        blocks = []
        for j, dpr in enumerate(drop_path_rates):
            if mixer == 'mhsa' or (mixer == 'glmix+mhsa' and j % 2 == 1):
                blocks.append(MHSABlock(**conv_common, drop_path=dpr, window=self.mhsa_window))
            else:
                blocks.append(
                    GLMixBlock(
                        **conv_common,
                        num_slots=settings['num_slots'],
                        slot_init=settings['slot_init'],
                        local_kernel=settings['local_kernel'],
                        drop_path=dpr))
        return GLNetStage(blocks, with_cp=with_cp)

    @staticmethod
    def _init_default(m: nn.Module) -> None:
        """The ImageNet models' initialisation: truncated normal linears, unit LayerNorms."""
        if isinstance(m, nn.Linear):
            trunc_normal_init(m, std=.02, bias=0.)
        elif isinstance(m, nn.LayerNorm):
            constant_init(m, val=1., bias=0.)

    def _store_channels_last(self) -> None:
        """Store the kernels of the modules that run on channels-last maps channels-last.

        Autograd gives those kernels' gradients the layout of the maps. Stored contiguously, the
        1x1 and depth-wise kernels (whose layouts differ only in size-1 strides) and the later
        patch embeddings would have gradients whose strides differ from their own, which DDP
        copies at every step ("Grad strides do not match bucket view strides"). Loading weights
        copies into the stored tensors, so the layout stays.
        """
        for module in (*self.downsample_layers[1:], *self.stages):
            module.to(memory_format=torch.channels_last)

    def init_weights(self) -> None:
        if self.init_cfg is None or self.init_cfg.get('type') != 'Pretrained':
            super().init_weights()
            return
        load_pretrained(
            self,
            self.init_cfg['checkpoint'],
            allow_partial=self.init_cfg.get('allow_partial', False),
            **self.loading_options())

    def loading_options(self) -> dict:
        """How a checkpoint file is read into this model: the arguments of
        :func:`~glmix_mm.checkpoint.load_pretrained` besides the model and the file."""
        return dict(
            description=f'GLNet(arch={self.arch_name!r})',
            convert=self._convert_checkpoint,
            preferred_key=self.released_weights_key.get(self.arch_name),
            optional_missing=[r'norm\d\.'])

    def _convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        """Drop what the backbone does not have: classification heads, the pre-head norm of the
        ImageNet models (``norm.``) and output norms this model was built without."""
        own, out_norms = self.state_dict(), {f'norm{i}' for i in range(4)}
        return {
            k: v
            for k, v in backbone_weights(state_dict).items()
            if not (k.split('.')[0] in out_norms and k not in own)
        }

    def _check_input(self, x: torch.Tensor) -> None:
        """Refuse what the network cannot process with one line (attributes only: no pass over
        the data, so NaNs are not looked for)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f'GLNet expects a torch.Tensor image batch, got '
                            f'{type(x).__name__}; convert it with torch.as_tensor(...).')
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            hint = ' Add a batch dimension (x[None]) to a single image.' if x.dim() == 3 else ''
            raise ValueError(f'GLNet expects an image batch of shape (N, {self.in_channels}, H, '
                             f'W), got {tuple(x.shape)}.{hint}')
        if not x.is_floating_point():
            raise TypeError(f'GLNet expects a floating-point image batch (normalised with the '
                            f'mean and std, as the data preprocessor does), got {x.dtype}.')
        if x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f'GLNet got an empty image batch of shape {tuple(x.shape)}.')

    def cache_blocked(self, x: torch.Tensor) -> bool:
        """The execution strategy for ``x`` (see ``execution``): whether it runs cache-blocked
        (eager CPU inference with ``'auto'``) or as the plain model."""
        return self.execution == 'auto' and cpu_blocking.applies(x, self)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        maps = self.stage_outputs(x, self.out_indices)
        return tuple(
            getattr(self, f'norm{i}')(out).contiguous() for i, out in zip(self.out_indices, maps))

    def stage_outputs(self,
                      x: torch.Tensor,
                      indices: Sequence[int],
                      last: Optional[int] = None) -> List[torch.Tensor]:
        """The raw outputs (before the output norms, in the blocks' memory layout) of the stages
        ``indices`` (ascending), running the stages up to ``last`` (default: every stage)."""
        self._check_input(x)
        blocked = self.cache_blocked(x)
        outs = []
        for i in range(len(self.stages) if last is None else last + 1):
            x = self._embed(i, _pad_to_multiple(x, self.pad_multiples[i]), blocked)
            x = self.stages[i](x, cache_blocking=blocked)
            if i in indices:
                outs.append(x)
        return outs

    def _embed(self, index: int, x: torch.Tensor, blocked: bool = False) -> torch.Tensor:
        """Patch embedding ``index``, its output in the blocks' memory layout (with ``blocked``,
        the stem runs on groups of images, see :func:`cpu_blocking.stem_forward`)."""
        layout = torch.channels_last if self.channels_last else torch.contiguous_format

        def embed(images: torch.Tensor) -> torch.Tensor:
            return self.downsample_layers[index](images).contiguous(memory_format=layout)

        if blocked and index == 0:
            return cpu_blocking.stem_forward(embed, x, self.stem_elements)
        return embed(x)

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules = [self.downsample_layers[0]]
        for i in range(min(self.frozen_stages, len(self.stages))):
            modules += [self.downsample_layers[i], self.stages[i]]
            if i in self.out_indices:
                modules.append(getattr(self, f'norm{i}'))
        return modules

    def _freeze_stages(self) -> None:
        freeze(self._frozen_modules())

    def train(self, mode: bool = True) -> 'GLNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batch_norms_to_eval(self)
        return self
