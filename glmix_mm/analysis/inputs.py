"""What the analysis tools feed models: shapes and options parsed from the command line, random
input tensors and synthetic batches (images with ground truth) for full OpenMMLab models."""
import ast
from typing import Any, List, Sequence, Tuple

import torch
import torch.nn as nn

from glmix_mm.errors import UsageError


def parse_shape(text: str, lengths: Sequence[int] = (4, )) -> Tuple[int, ...]:
    """``'1x3x224x224'`` -> ``(1, 3, 224, 224)``: positive integers joined by ``x`` (or ``X``).

    Args:
        text (str): The shape as typed.
        lengths (Sequence[int]): How many integers are accepted (default: 4, ``NxCxHxW``).

    Raises:
        UsageError: naming the expected form, if ``text`` is anything else (a ``ValueError``).
    """
    parts = str(text).strip().lower().split('x')
    if len(parts) not in lengths or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        expected = ('NxCxHxW, four positive integers joined by "x", such as 1x3x224x224'
                    if tuple(lengths) == (4, ) else
                    f'{" or ".join(map(str, lengths))} positive integers joined by "x"')
        raise UsageError(f'Bad shape {text!r}: expected {expected}.')
    return tuple(int(p) for p in parts)


def split_top_level(text: str, sep: str = ',') -> List[str]:
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
            raise UsageError(f'Bad argument {item!r}: expected key=value.')
        kwargs[key.strip()] = parse_value(value)
    return kwargs


def make_input(shape: Sequence[int], device: str = 'cpu', seed: int = 0) -> torch.Tensor:
    """A reproducible backbone input: standard normal values (like normalised images)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen).to(device)


# ------------------------------------------------------------------------------------------------
# Synthetic batches of full models: random images with random ground truth
# ------------------------------------------------------------------------------------------------
def _random_images(shape: Sequence[int]) -> List[torch.Tensor]:
    batch, channels, height, width = shape
    return [torch.randint(0, 256, (channels, height, width), dtype=torch.uint8)
            for _ in range(batch)]


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


SAMPLE_MAKERS = {'mmdet': _det_samples, 'mmseg': _seg_samples, 'mmpretrain': _cls_samples}


def synthetic_batch(model: nn.Module, scope: str, shape: Sequence[int], training: bool) -> dict:
    """Random images with random ground truth, through the model's data preprocessor."""
    data = SAMPLE_MAKERS[scope](model, shape)
    return model.data_preprocessor(data, training)


def detection_samples(batch: int, img_hw: Tuple[int, int], pad_hw: Tuple[int, int]) -> list:
    """Synthetic :class:`DetDataSample` s with the metainfo a detector's test path reads."""
    from mmdet.structures import DetDataSample
    meta = dict(img_shape=img_hw, ori_shape=img_hw, pad_shape=pad_hw, batch_input_shape=pad_hw,
                scale_factor=(1., 1.))
    return [DetDataSample(metainfo=meta) for _ in range(batch)]
