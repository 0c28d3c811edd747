"""Classification heads for GLNet in MMPretrain."""
from typing import Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead

from glmix_mm.registry import register_model


def token_labeling_logits(tokens: torch.Tensor, fc: nn.Module, aux_fc: nn.Module,
                          aux_weight: float) -> torch.Tensor:
    """Logits of GLNet's token-labeling models from the tokens ``(B, N, C)`` of the
    (normalised) last map: ``fc(mean(tokens)) + aux_weight * max_p aux_fc(tokens_p)``."""
    return fc(tokens.mean(dim=1)) + aux_weight * aux_fc(tokens).amax(dim=1)


@register_model
class TokenLabelingClsHead(LinearClsHead):
    """The head of GLNet's token-labeling models (``glnet_{4g,9g}_tklb``).

    Logits are the linear classifier of the average-pooled map plus ``aux_weight`` times the
    per-class maximum, over all positions, of an auxiliary linear classifier applied to every
    position of the map: ``fc(mean(x)) + aux_weight * max_p aux_fc(x_p)``. It takes the
    (normalised) last feature map, so use it without a pooling neck. For evaluation and plain
    fine-tuning: the usual classification losses apply to these logits; the dense token-label
    targets of token-labeling training are not supported.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the input map.
        aux_weight (float): Weight of the auxiliary (dense) logits. Defaults to 0.5.
        **kwargs: Passed to :class:`mmpretrain.models.heads.LinearClsHead`.
    """

    def __init__(self, num_classes: int, in_channels: int, aux_weight: float = 0.5,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.aux_weight = aux_weight
        self.aux_fc = nn.Linear(in_channels, num_classes)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        tokens = self.pre_logits(feats).flatten(2).transpose(1, 2)  # (B, H*W, C)
        return token_labeling_logits(tokens, self.fc, self.aux_fc, self.aux_weight)
