"""Conformer as a dense multi-scale backbone (ICCV 2021).

Conformer runs a ResNet-like CNN branch and a ViT branch side by side and couples them in every
block through Feature Coupling Units. For detection and segmentation the CNN branch provides four
feature maps at strides 4, 8, 16 and 32, taken after blocks 4, 8, 11 and 12 as in the authors'
MMDetection backbone.

The building blocks and the module tree are MMPretrain's (:class:`mmpretrain.models.Conformer`),
so MMPretrain's Conformer checkpoints load as they are; the authors' releases use other names in
the transformer blocks and are renamed on the fly by :func:`convert_conformer_state_dict`.
"""
import math
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

try:
    from mmpretrain.models.backbones.conformer import Conformer as MMPretrainConformer
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError('glmix_mm.models.conformer builds on MMPretrain\'s Conformer blocks: '
                      'install it with `pip install "mmpretrain>=1.0"`.') from error

from glmix_mm.checkpoint import StateDict, load_pretrained
from glmix_mm.registry import register_model

from .argument_checks import check_drop_path_rate, check_out_indices, is_int
from .freezing import batch_norms_to_eval, freeze

# Parts of the classification models that a dense backbone does not have: the two heads and the
# norm before the transformer head (authors' and MMPretrain's names alike).
CLASSIFIER_PREFIXES = ('conv_cls_head.', 'trans_cls_head.', 'trans_norm.')
# Model keys a checkpoint may lack: BatchNorm step counters (absent from converted weights).
OPTIONAL_MISSING = [r'.*num_batches_tracked$']

# Authors' names -> MMPretrain's names inside a transformer block (``trans_1`` and every
# ``conv_trans_<i>.trans_block``). Everything else is named alike.
_TRANSFORMER_BLOCK = re.compile(r'^(trans_1|conv_trans_\d+\.trans_block)\.(.+)$')
_UPSTREAM_BLOCK_NAMES = {
    'norm1.': 'ln1.',
    'norm2.': 'ln2.',
    'mlp.fc1.': 'ffn.layers.0.0.',
    'mlp.fc2.': 'ffn.layers.1.',
}


def _rename_transformer_key(key: str) -> str:
    """Map one authors'-format key to MMPretrain's name; other keys are returned unchanged."""
    match = _TRANSFORMER_BLOCK.match(key)
    if match is None:
        return key
    block, rest = match.groups()
    for old, new in _UPSTREAM_BLOCK_NAMES.items():
        if rest.startswith(old):
            return f'{block}.{new}{rest[len(old):]}'
    return key


def convert_conformer_state_dict(state_dict: StateDict,
                                 keep_classifier: bool = False) -> StateDict:
    """Bring a Conformer state dict to the key names of :class:`Conformer`.

    Accepts the authors' classification and detection-backbone weights and MMPretrain's
    backbone weights (without their ``backbone.`` prefix); already converted weights pass
    through unchanged.

    Args:
        state_dict (dict): Parameter name to tensor.
        keep_classifier (bool): Keep the classification parts (``CLASSIFIER_PREFIXES``, under
            their names) instead of dropping them.

    Returns:
        dict: The weights with MMPretrain's names.
    """
    return {
        _rename_transformer_key(k): v
        for k, v in state_dict.items()
        if keep_classifier or not k.startswith(CLASSIFIER_PREFIXES)
    }


@register_model
class Conformer(MMPretrainConformer):
    """Conformer backbone returning the CNN-branch feature maps.

    A dense-prediction version of `Conformer: Local Features Coupling Global Representations for
    Visual Recognition <https://arxiv.org/abs/2105.03889>`_, computing what the authors'
    MMDetection backbone computes. It reuses MMPretrain's classification Conformer (same modules
    and parameter names) without its classifier norm, and returns, for a depth-12 model, the CNN
    branch after blocks 4, 8, 11 and 12:

    ======  ======  ============  =============  ==============
    output  stride  tiny          small          base
    ======  ======  ============  =============  ==============
    0       4       64            256            384
    1       8       128           512            768
    2       16      256           1024           1536
    3       32      256           1024           1536
    ======  ======  ============  =============  ==============

    Blocks are numbered 1 to ``depths`` (12): block 1 is ``conv_1`` + ``trans_patch_conv`` +
    ``trans_1`` and block ``i > 1`` is ``conv_trans_<i>``. In general the outputs follow blocks
    ``depths / 3``, ``2 * depths / 3``, ``depths - 1`` and ``depths``.

    Input size: the coupling units split the stride-4 CNN map into ``patch_size / 4`` square
    cells, so ``ceil(H / 4)`` and ``ceil(W / 4)`` must be multiples of ``patch_size / 4``, which
    any multiple of ``patch_size`` satisfies (multiples of 32 suit both patch sizes). Other sizes
    raise a ``ValueError``; pad the images (``pad_size_divisor`` of the data preprocessor).

    Args:
        arch (str | dict): ``'tiny'``, ``'small'`` or ``'base'`` (or their initials), or a dict
            with the keys ``embed_dims``, ``depths``, ``num_heads`` and ``channel_ratio`` (the
            CNN branch has ``64 * channel_ratio`` channels in its first stage). Defaults to
            ``'small'``.
        patch_size (int): 16 or 32; the transformer branch works at this stride. The released
            models are tiny/16, small/16, small/32 and base/16. Defaults to 16.
        out_indices (int | Sequence[int]): Which of the four CNN-branch maps to return, in
            0..3 (negative indices count from the last map). Defaults to ``(0, 1, 2, 3)``.
        frozen_stages (int): -1 freezes nothing; 0 freezes the stem (``conv1``, ``bn1``); ``k``
            in 1..4 freezes the stem and everything up to output ``k - 1``, both branches: stage
            group 1 is block 1 (with ``cls_token``) to block ``depths / 3``, group 2 the blocks up
            to ``2 * depths / 3``, group 3 those up to ``depths - 1`` and group 4 the last block.
            Frozen modules get ``requires_grad=False`` and stay in eval mode in ``train()``. The
            authors' detection configs, whose ``frozen_stages=1`` froze only the stem, correspond
            to ``frozen_stages=0``. Defaults to -1.
        norm_eval (bool): Keep every BatchNorm layer in eval mode (frozen running statistics)
            while training. Defaults to False.
        with_cp (bool): Checkpoint the activations of each block (``conv_1``, ``trans_1`` and
            every ``conv_trans_<i>``) when training with gradients enabled, trading compute for
            memory. BatchNorm layers in training mode then update their running statistics a
            second time on recomputation, so combine it with ``norm_eval=True`` as detectors do.
            Defaults to False.
        drop_path_rate (float): Stochastic depth rate of the transformer branch, growing linearly
            over the blocks (as the authors'; MMPretrain also drops paths in the CNN fusion
            blocks, which this backbone does not). Defaults to 0.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)`` loads, strictly
            and as they are, the authors' classification or detection weights, MMPretrain's
            Conformer checkpoints and converted files (tools/model_converters/conformer2mm.py);
            other configs are handled by MMEngine. Defaults to None (MMPretrain's random init).
    """

    strides = (4, 8, 16, 32)
    essential_arch_keys = ('embed_dims', 'depths', 'num_heads', 'channel_ratio')
    patch_sizes = (16, 32)

    def __init__(self,
                 arch: Union[str, Dict[str, int]] = 'small',
                 patch_size: int = 16,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        settings = self._arch_settings(arch)
        if patch_size not in self.patch_sizes or isinstance(patch_size, bool):
            raise ValueError(f'Conformer supports patch_size {self.patch_sizes}, got '
                             f'{patch_size!r}.')
        if not is_int(frozen_stages) or frozen_stages not in range(-1, 5):
            raise ValueError(f'frozen_stages must be an int in -1..4, got {frozen_stages!r}.')
        check_drop_path_rate(drop_path_rate)
        out_indices = check_out_indices(out_indices, len(self.strides))
        super().__init__(
            arch=settings,
            patch_size=patch_size,
            qkv_bias=True,
            drop_path_rate=drop_path_rate,
            norm_eval=norm_eval,
            frozen_stages=frozen_stages,
            out_indices=-1,
            init_cfg=init_cfg)
        # MMPretrain's classifier parts (pooling, classifier norm) and its zero padding of
        # unsupported input sizes, which this backbone rejects instead.
        del self.pooling, self.trans_norm, self.auto_pad
        # Stochastic depth on the transformer branch only, as in the authors' model.
        for i in range(2, self.fin_stage):
            getattr(self, f'conv_trans_{i}').fusion_block.drop_path = nn.Identity()

        self.arch_name = arch.lower() if isinstance(arch, str) else 'custom'
        self.patch_size = patch_size
        self.with_cp = with_cp
        self.out_blocks = (self.depths // 3, 2 * self.depths // 3, self.depths - 1, self.depths)
        self.out_indices = out_indices
        channels = [64 * self.channel_ratio * ratio for ratio in (1, 2, 4, 4)]
        self.out_channels = tuple(channels[i] for i in self.out_indices)
        self._freeze_stages()

    @classmethod
    def _arch_settings(cls, arch: Union[str, Dict[str, int]]) -> Dict[str, int]:
        """Validate ``arch`` and return its settings dict."""
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'Unknown Conformer arch {arch!r}; choose one of '
                                 f'{sorted(cls.arch_zoo)} or give a dict with the keys '
                                 f'{cls.essential_arch_keys}.')
            return dict(cls.arch_zoo[arch.lower()])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}.')
        missing = [k for k in cls.essential_arch_keys if k not in arch]
        unknown = [k for k in arch if k not in cls.essential_arch_keys]
        if missing or unknown:
            raise ValueError(f'A custom Conformer arch needs exactly the keys '
                             f'{cls.essential_arch_keys}; missing {missing}, unknown {unknown}.')
        if arch['depths'] % 3 or arch['depths'] < 6:
            raise ValueError(f'Conformer depths must be a multiple of 3 and at least 6 (three '
                             f'stages of blocks), got {arch["depths"]}.')
        if arch['embed_dims'] % arch['num_heads']:
            raise ValueError(f'embed_dims ({arch["embed_dims"]}) must be divisible by num_heads '
                             f'({arch["num_heads"]}).')
        return dict(arch)

    def _stage_group(self, group: int) -> List[nn.Module]:
        """The modules of stage group ``group`` (1..4): what produces output ``group - 1``."""
        first = 2 if group == 1 else self.out_blocks[group - 2] + 1
        last = self.out_blocks[group - 1]
        blocks = [
            getattr(self, f'conv_trans_{i}') for i in range(first, last + 1)
            if hasattr(self, f'conv_trans_{i}')  # blocks pruned for fewer outputs (glmix_mm.timm)
        ]
        if group == 1:
            blocks = [self.conv_1, self.trans_patch_conv, self.trans_1] + blocks
        return blocks

    def _freeze_stages(self) -> None:
        """Put the frozen modules (see ``frozen_stages``) in eval mode without gradients."""
        modules = [self.conv1, self.bn1] if self.frozen_stages >= 0 else []
        for group in range(1, self.frozen_stages + 1):
            modules += self._stage_group(group)
        freeze(modules)
        if self.frozen_stages >= 1:
            self.cls_token.requires_grad = False

    def train(self, mode: bool = True) -> 'Conformer':
        """Set the training mode, keeping frozen stages and (with ``norm_eval``) BN in eval.

        Args:
            mode (bool): Training (True) or evaluation (False) mode.

        Returns:
            Conformer: self.
        """
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batch_norms_to_eval(self)
        return self

    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained', checkpoint=...)`` strictly, else initialise.

        Every parameter and buffer must come from the checkpoint (except BatchNorm's
        ``num_batches_tracked`` counters); a checkpoint of another arch or model raises an error
        listing the missing, unexpected and mismatched keys.
        """
        if not (isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        load_pretrained(self, self.init_cfg['checkpoint'], **self.loading_options())
        self._is_init = True

    def loading_options(self) -> dict:
        """How a checkpoint file is read into this model: the arguments of
        :func:`~glmix_mm.checkpoint.load_pretrained` besides the model and the file."""
        return dict(
            description=f'Conformer(arch={self.arch_name!r}, patch_size={self.patch_size})',
            convert=convert_conformer_state_dict,
            optional_missing=OPTIONAL_MISSING)

    def _check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` (``TypeError``) for inputs the network cannot process
        (attributes only: no pass over the data)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f'Conformer expects a torch.Tensor image batch, got '
                            f'{type(x).__name__}; convert it with torch.as_tensor(...).')
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError('Conformer expects a batch of RGB images of shape (N, 3, H, W), got '
                             f'shape {tuple(x.shape)}. Add a batch dimension (x[None]) to a '
                             'single image and feed 3-channel images.')
        if not x.is_floating_point():
            raise TypeError(f'Conformer expects a floating-point image batch (normalised with '
                            f'the mean and std, as the data preprocessor does), got {x.dtype}.')
        cell = self.patch_size // 4
        height, width = x.shape[2:]
        if height < 1 or width < 1:
            raise ValueError(f'Conformer got an empty image batch of shape {tuple(x.shape)}.')
        if math.ceil(height / 4) % cell or math.ceil(width / 4) % cell:
            raise ValueError(
                f'Conformer(patch_size={self.patch_size}) cannot process {height}x{width} inputs: '
                f'ceil(H / 4) and ceil(W / 4) must be multiples of {cell} so that the CNN and '
                f'transformer maps line up. Pad the images to multiples of {self.patch_size} '
                '(e.g. pad_size_divisor=32 in the data preprocessor).')

    def _run(self, module: Callable, *args: torch.Tensor, **kwargs):
        """Call ``module``, checkpointing its activations when ``with_cp`` applies."""
        if self.with_cp and self.training and torch.is_grad_enabled():
            return cp.checkpoint(module, *args, use_reentrant=False, **kwargs)
        return module(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the selected CNN-branch feature maps.

        Args:
            x (torch.Tensor): Images of shape (N, 3, H, W); see the class docstring for H, W.

        Returns:
            tuple[torch.Tensor]: The maps of ``out_indices``, at strides 4, 8, 16 and 32.
        """
        maps, _ = self.forward_blocks(x, [self.out_blocks[i] for i in self.out_indices])
        return tuple(maps)

    def forward_blocks(self, x: torch.Tensor,
                       blocks: Sequence[int]) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """Run the blocks up to the last of ``blocks`` (numbered 2..``depths``, see the class
        docstring).

        Returns:
            tuple[list[torch.Tensor], torch.Tensor]: The CNN-branch maps after ``blocks`` and
            the transformer-branch tokens (class token first) after the last of them.
        """
        self._check_input(x)
        stem = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        feats = self._run(self.conv_1, stem, out_conv2=False)
        tokens = self.trans_patch_conv(stem).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = self._run(self.trans_1, tokens)

        outs = []
        for i in range(2, max(blocks) + 1):
            feats, tokens = self._run(getattr(self, f'conv_trans_{i}'), feats, tokens)
            if i in blocks:
                outs.append(feats)
        return outs, tokens
