from .conformer import Conformer
from .glmix import GLMixBlock, LayerNorm2d, MHSABlock, MHSATokenBlock
from .glnet import GLNet
from .heads import TokenLabelingClsHead

__all__ = ['GLNet', 'Conformer', 'GLMixBlock', 'MHSABlock', 'MHSATokenBlock', 'LayerNorm2d',
           'TokenLabelingClsHead']
