"""The released GLNet classifiers as timm models, under upstream's names (``glnet_4g``, ...).

The model is :class:`~glmix_mm.models.GLNet` (its raw stage outputs) with upstream's classifier
on top; its parameter names are those of the released checkpoints, so the ``model`` (16G:
``model_ema``) entry of a release is a state dict of the timm model as it is.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.models import adapt_input_conv, generate_default_cfgs
from timm.models._features import feature_take_indices

from glmix_mm.checkpoint import StateDict
from glmix_mm.models import GLNet
from glmix_mm.models.heads import token_labeling_logits
from glmix_mm.timm.builder import TimmClassifier, check_options, pretrained_cfg, register_variants

__all__ = ['TimmGLNet']

# Weight of the token-labeling models' dense logits (upstream models/glnet_tklb.py).
TKLB_AUX_WEIGHT = 0.5
# The input convolution of each patch-embedding layout.
FIRST_CONV = {'overlapped': 'downsample_layers.0.1', 'non_overlapped': 'downsample_layers.0.0'}


class TimmGLNet(TimmClassifier, GLNet):
    """GLNet as a timm classifier: the released ImageNet models.

    Upstream's classifier: :class:`~glmix_mm.models.GLNet` (its four stages, no output norms),
    a BatchNorm of the last map (``norm``), global average pooling and a linear layer
    (``head``). The token-labeling models (arch ``'4g_tklb'``, ``'9g_tklb'``) add the dense
    classifier ``tklb_aux_head``: logits ``head(mean) + 0.5 * max over positions of
    tklb_aux_head``, in training mode too (token-labeling training is not supported).

    Args:
        arch (str | dict): A GLNet arch (see :class:`~glmix_mm.models.GLNet`).
        num_classes (int): Classes of the head; 0: no head, ``forward`` returns the pooled
            features. Defaults to 1000.
        in_chans (int): Input channels. Defaults to 3.
        global_pool (str): Only ``'avg'``, as released.
        drop_rate (float): Dropout before the classifier. Defaults to 0.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        output_stride (int, optional): Only 32 (the maps are at strides 4 to 32).
        **kwargs: Other :class:`~glmix_mm.models.GLNet` arguments (``mhsa_window``,
            ``with_cp``, ``norm_cfg``, ``frozen_stages``, ``norm_eval``, ``channels_last``,
            ``execution``).
    """
    classifiers = ('head', 'tklb_aux_head')
    final_norm = 'norm'

    def __init__(self,
                 arch: Union[str, dict] = '4g',
                 num_classes: int = 1000,
                 in_chans: int = 3,
                 global_pool: str = 'avg',
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 output_stride: Optional[int] = None,
                 **kwargs) -> None:
        check_options('GLNet', global_pool, output_stride, kwargs)
        super().__init__(
            arch, in_channels=in_chans, out_indices=(0, 1, 2, 3), out_norm=None,
            drop_path_rate=drop_path_rate, **kwargs)
        dims = self.arch_settings['embed_dims']
        self.token_labeling = isinstance(arch, str) and arch.endswith('_tklb')
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = dims[-1]
        self.feature_info = [
            dict(num_chs=c, reduction=4 * 2**i, module=f'stages.{i}') for i, c in enumerate(dims)
        ]
        self.first_conv = FIRST_CONV[self.arch_settings['patch_embed']]
        self.norm = nn.BatchNorm2d(dims[-1])
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """New classification layers for ``num_classes`` classes (0: none)."""
        if global_pool is not None:
            check_options('GLNet', global_pool, None, {})
        self.num_classes = num_classes
        self.head = nn.Identity()
        self.tklb_aux_head = None
        if num_classes > 0:
            self.head = nn.Linear(self.num_features, num_classes)
            self._init_default(self.head)
        if num_classes > 0 and self.token_labeling:
            self.tklb_aux_head = nn.Linear(self.num_features, num_classes)
            self._init_default(self.tklb_aux_head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised last map ``(B, C, H / 32, W / 32)``."""
        return self.norm(self.stage_outputs(x, [len(self.stages) - 1])[0])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits (or, with ``pre_logits``, the pooled features) of the normalised last map."""
        if self.tklb_aux_head is not None and not pre_logits:
            tokens = self.head_drop(x.flatten(2).transpose(1, 2))  # (B, H * W, C)
            return token_labeling_logits(tokens, self.head, self.tklb_aux_head, TKLB_AUX_WEIGHT)
        x = self.head_drop(x.mean(dim=(2, 3)))
        return x if pre_logits else self.head(x)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = 'NCHW',
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """timm's feature API: the stage outputs ``indices`` (all if None, the last n if an int),
        contiguous NCHW; unless ``intermediates_only``, also the normalised last map
        (``forward_features``) as the first element of a pair. ``norm`` applies ``norm`` to
        the last stage's output if it is taken."""
        if output_fmt != 'NCHW':
            raise ValueError(f"GLNet's maps are NCHW; output_fmt={output_fmt!r} is not supported.")
        last_stage = len(self.stages) - 1
        take, last = feature_take_indices(len(self.stages), indices)
        if not (stop_early or intermediates_only):
            last = last_stage
        run = sorted(set(take) | {last})
        by_stage = dict(zip(run, self.stage_outputs(x, run, last)))
        final = by_stage[last]
        if last == last_stage:
            final = self.norm(final)
            if norm and last in take:
                by_stage[last] = final
        intermediates = [by_stage[i].contiguous() for i in take]
        return intermediates if intermediates_only else (final, intermediates)

    def prune_intermediate_layers(self,
                                  indices: Union[int, List[int]] = 1,
                                  prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the stages after the last of ``indices`` (and the norm and head where they no
        longer apply); the absolute indices kept."""
        take, last = feature_take_indices(len(self.stages), indices)
        pruned_end = last < len(self.stages) - 1
        self.stages = self.stages[:last + 1]
        self.downsample_layers = self.downsample_layers[:last + 1]
        if prune_norm or pruned_end:
            self.norm = nn.Identity()
        if prune_head or pruned_end:
            self.num_features = self.head_hidden_size = self.feature_info[last]['num_chs']
            self.reset_classifier(0)
        return take

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of every block (GLNet's ``with_cp``)."""
        for stage in self.stages:
            stage.with_cp = enable

    def _convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        """A released state dict for this model: the classifier dropped for another number of
        classes, the input convolution adapted to ``in_chans`` (both as timm does)."""
        state_dict = self.without_other_classifier(state_dict)
        weight = f'{self.first_conv}.weight'
        if self.in_channels != 3 and weight in state_dict:
            adapted = adapt_input_conv(self.in_channels, state_dict[weight])
            state_dict = {**state_dict, weight: adapted}
        return state_dict


def _cfg(arch: str) -> dict:
    settings = GLNet.arch_zoo[GLNet.arch_aliases.get(arch, arch)]
    return pretrained_cfg(
        first_conv=FIRST_CONV[settings['patch_embed']],
        classifier=('head', 'tklb_aux_head') if arch.endswith('_tklb') else 'head',
        license='mit', origin_url='https://github.com/rayleizhu/GLMix',
        paper_ids='arXiv:2411.14429',
        paper_name='Revisiting the Integration of Convolution and Attention for Vision Backbone')


# timm name -> GLNet arch (the released models, upstream's names).
ARCHS = {
    'glnet_stl': 'stl', 'glnet_stl_paramslot': 'stl-paramslot', 'glnet_4g': '4g',
    'glnet_9g': '9g', 'glnet_16g': '16g', 'glnet_4g_tklb': '4g_tklb', 'glnet_9g_tklb': '9g_tklb'
}
default_cfgs = generate_default_cfgs({name: _cfg(arch) for name, arch in ARCHS.items()})
MODEL_NAMES = register_variants(__name__, TimmGLNet, {
    name: dict(arch=arch, released_file=f'{name}.pth') for name, arch in ARCHS.items()})
