"""A tiny model and data set to test the glmix_mm hooks in a real MMEngine Runner."""
import torch
import torch.nn as nn
from mmengine.model import BaseModel


class ToyModel(BaseModel):
    """``backbone`` -> ``neck`` -> ``head`` (``num_classes`` outputs), squared-error loss."""

    def __init__(self, width: int = 4, num_classes: int = 2) -> None:
        super().__init__()
        self.backbone = nn.Linear(3, width)
        self.neck = nn.Linear(width, 4)
        self.head = nn.Linear(4, num_classes)

    def forward(self, inputs, targets=None, mode='tensor'):
        x = self.head(self.neck(self.backbone(torch.stack(inputs))))
        if mode == 'loss':
            return dict(loss=((x - torch.stack(targets)[:, :x.shape[1]])**2).mean())
        return x


def toy_data(n: int = 8) -> list:
    g = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(3, generator=g), targets=torch.randn(2, generator=g))
            for _ in range(n)]
