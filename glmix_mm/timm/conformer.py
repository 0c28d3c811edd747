"""The released Conformer classifiers as timm models (``conformer_small_patch16``, ...: the
authors' ``Conformer_*`` names in lower case).

The model is :class:`~glmix_mm.models.Conformer` (MMPretrain's blocks and names) with the
authors' two classifiers on top: average pooling and a linear layer on the CNN branch
(``conv_cls_head``), LayerNorm (``trans_norm``) and a linear layer on the class token of the
transformer branch (``trans_cls_head``). The logits are their sum, the prediction of the
authors' evaluation (its "total" accuracy) and of MMPretrain's ``ConformerHead``.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.models import generate_default_cfgs
from timm.models._features import feature_take_indices

from glmix_mm.checkpoint import StateDict
from glmix_mm.models import Conformer
from glmix_mm.models.conformer import convert_conformer_state_dict
from glmix_mm.timm.builder import TimmClassifier, check_options, pretrained_cfg, register_variants

__all__ = ['TimmConformer']

Features = Tuple[torch.Tensor, torch.Tensor]


class TimmConformer(TimmClassifier, Conformer):
    """Conformer as a timm classifier: the released ImageNet models.

    ``forward_features`` gives the last CNN map and the normalised tokens; ``forward_head``
    the sum of the two classifiers' logits, or (``pre_logits`` or ``num_classes=0``) the pooled
    CNN map and the class token concatenated. The maps of ``features_only`` are the dense
    backbone's (strides 4 to 32, see :class:`~glmix_mm.models.Conformer`).

    Args:
        arch (str | dict): A Conformer arch (``'tiny'``, ``'small'``, ``'base'``).
        patch_size (int): 16 or 32.
        num_classes (int): Classes of the heads; 0: no heads. Defaults to 1000.
        in_chans (int): Only 3 (RGB images).
        global_pool (str): Only ``'avg'``, as released.
        drop_rate (float): Dropout before the classifiers. Defaults to 0.
        drop_path_rate (float): Stochastic depth rate of the transformer branch.
        output_stride (int, optional): Only 32.
        **kwargs: Other :class:`~glmix_mm.models.Conformer` arguments (``with_cp``,
            ``frozen_stages``, ``norm_eval``).
    """
    classifiers = ('conv_cls_head', 'trans_cls_head')
    final_norm = 'trans_norm'

    def __init__(self,
                 arch: Union[str, dict] = 'small',
                 patch_size: int = 16,
                 num_classes: int = 1000,
                 in_chans: int = 3,
                 global_pool: str = 'avg',
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 output_stride: Optional[int] = None,
                 **kwargs) -> None:
        check_options('Conformer', global_pool, output_stride, kwargs)
        if in_chans != 3:
            raise ValueError(f'Conformer takes RGB images: in_chans must be 3, got {in_chans!r}.')
        super().__init__(
            arch, patch_size=patch_size, out_indices=(0, 1, 2, 3),
            drop_path_rate=drop_path_rate, **kwargs)
        channels = [64 * self.channel_ratio * ratio for ratio in (1, 2, 4, 4)]
        self.feature_info = [
            dict(num_chs=c, reduction=s, module=f'conv_trans_{b}')
            for c, s, b in zip(channels, self.strides, self.out_blocks)
        ]
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = channels[-1] + self.embed_dims
        self.last_block = self.depths
        self.trans_norm = nn.LayerNorm(self.embed_dims)
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)
        self.apply(self._init_weights)  # MMPretrain's (the authors') initialisation

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """New classification layers for ``num_classes`` classes (0: none)."""
        if global_pool is not None:
            check_options('Conformer', global_pool, None, {})
        self.num_classes = num_classes
        conv_channels = self.num_features - self.embed_dims
        for name, channels in zip(self.classifiers, (conv_channels, self.embed_dims)):
            layer = nn.Linear(channels, num_classes) if num_classes > 0 else nn.Identity()
            self._init_weights(layer)
            setattr(self, name, layer)

    def forward_features(self, x: torch.Tensor) -> Features:
        """The last CNN map and the normalised transformer tokens (class token first)."""
        maps, tokens = self.forward_blocks(x, [self.last_block])
        return maps[0], self.trans_norm(tokens)

    def forward_head(self, features: Features, pre_logits: bool = False) -> torch.Tensor:
        conv = self.head_drop(features[0].mean(dim=(2, 3)))
        cls_token = self.head_drop(features[1][:, 0])
        if pre_logits or self.num_classes == 0:
            return torch.cat([conv, cls_token], dim=1)
        return self.conv_cls_head(conv) + self.trans_cls_head(cls_token)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = 'NCHW',
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[Features, List[torch.Tensor]]]:
        """timm's feature API: the CNN maps ``indices`` (all four if None, the last n if an
        int); unless ``intermediates_only``, also ``forward_features``' pair first (the maps
        have no norm of their own: ``norm`` changes nothing)."""
        if output_fmt != 'NCHW':
            raise ValueError(f"Conformer's maps are NCHW; output_fmt={output_fmt!r} is not "
                             'supported.')
        take, last = feature_take_indices(len(self.feature_info), indices)
        blocks = [self.out_blocks[i] for i in take]
        if not (stop_early or intermediates_only):
            blocks.append(self.last_block)
        maps, tokens = self.forward_blocks(x, sorted(set(blocks)))
        by_block = dict(zip(sorted(set(blocks)), maps))
        intermediates = [by_block[self.out_blocks[i]] for i in take]
        if intermediates_only:
            return intermediates
        return (by_block[max(blocks)], self.trans_norm(tokens)), intermediates

    def prune_intermediate_layers(self,
                                  indices: Union[int, List[int]] = 1,
                                  prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the blocks after the last map of ``indices`` (and the norm and heads where they
        no longer apply); the absolute indices kept."""
        take, last = feature_take_indices(len(self.feature_info), indices)
        keep = self.out_blocks[last]
        for block in range(keep + 1, self.last_block + 1):
            delattr(self, f'conv_trans_{block}')
        pruned_end = keep < self.last_block
        self.last_block = keep
        if prune_norm or pruned_end:
            self.trans_norm = nn.Identity()
        if prune_head or pruned_end:
            self.reset_classifier(0)
        return take

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing of every block (Conformer's ``with_cp``)."""
        self.with_cp = enable

    def loading_options(self) -> dict:
        return dict(super().loading_options(), convert=self._convert_checkpoint)

    def _convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        """The authors' (or MMPretrain's backbone) names to ours, the classifiers kept unless
        this model has another number of classes."""
        return self.without_other_classifier(
            convert_conformer_state_dict(state_dict, keep_classifier=True))


def _cfg() -> dict:
    return pretrained_cfg(
        first_conv='conv1', classifier=TimmConformer.classifiers, license='apache-2.0',
        origin_url='https://github.com/pengzhiliang/Conformer', paper_ids='arXiv:2105.03889',
        paper_name='Conformer: Local Features Coupling Global Representations for Visual '
        'Recognition')


# timm name -> Conformer arguments (the released models).
ARGUMENTS = {
    'conformer_tiny_patch16': dict(arch='tiny', patch_size=16),
    'conformer_small_patch16': dict(arch='small', patch_size=16),
    'conformer_small_patch32': dict(arch='small', patch_size=32),
    'conformer_base_patch16': dict(arch='base', patch_size=16),
}
default_cfgs = generate_default_cfgs({name: _cfg() for name in ARGUMENTS})
MODEL_NAMES = register_variants(__name__, TimmConformer, {
    name: dict(arguments, released_file=f'Conformer{name[len("conformer"):]}.pth')
    for name, arguments in ARGUMENTS.items()})
