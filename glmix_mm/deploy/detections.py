"""Comparing two detectors' results on the same image: PyTorch against a deployed model.

Detections are paired greedily, highest PyTorch score first, with the unpaired deployed detection
of the same label whose box overlaps most (IoU); what a pair may differ by is then measured
(box corners in pixels, scores, mask pixels). Works on MMDetection's ``pred_instances``
(``bboxes``, ``scores``, ``labels`` and optionally ``masks``) or on plain dicts with those keys.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torchvision import ops


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def instances_to_numpy(instances: Any) -> Dict[str, np.ndarray]:
    """``bboxes``, ``scores``, ``labels`` (and ``masks`` if present) of an ``InstanceData`` or a
    dict, as numpy arrays."""
    keys = ('bboxes', 'scores', 'labels', 'masks')
    get = instances.get if isinstance(instances, dict) else lambda k: getattr(instances, k, None)
    return {k: _numpy(get(k)) for k in keys if get(k) is not None}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes ``a`` (N, 4) and ``b`` (M, 4) in x1y1x2y2
    (:func:`torchvision.ops.box_iou`; 0 where both boxes are empty)."""
    iou = ops.box_iou(torch.as_tensor(a, dtype=torch.float64),
                      torch.as_tensor(b, dtype=torch.float64))
    return iou.nan_to_num(0.).numpy()


@dataclass
class DetectionComparison:
    """How far a deployed detector's detections are from PyTorch's on one image.

    Attributes:
        num_reference (int): PyTorch detections.
        num_deployed (int): Deployed detections.
        num_paired (int): Pairs (same label, best overlapping box).
        max_box_error (float): Largest difference of a box corner in a pair, in pixels.
        max_score_error (float): Largest score difference in a pair.
        min_box_iou (float): Smallest box IoU in a pair.
        mask_pixel_error (float, optional): Mask pixels that differ over all pairs, divided by
            the mask pixels of PyTorch's detections (None without masks).
        min_mask_iou (float, optional): Smallest mask IoU in a pair (None without masks).
    """
    num_reference: int
    num_deployed: int
    num_paired: int
    max_box_error: float = 0.
    max_score_error: float = 0.
    min_box_iou: float = 1.
    mask_pixel_error: Optional[float] = None
    min_mask_iou: Optional[float] = None

    def equal(self, box_tol: float, score_tol: float, mask_tol: float) -> bool:
        """Same detections: all paired, boxes, scores and mask pixels within the tolerances
        (``mask_tol``: fraction of differing mask pixels)."""
        return (self.num_reference == self.num_deployed == self.num_paired
                and self.max_box_error <= box_tol and self.max_score_error <= score_tol
                and (self.mask_pixel_error is None or self.mask_pixel_error <= mask_tol))

    def summary(self) -> str:
        text = (f'{self.num_reference} PyTorch / {self.num_deployed} deployed detections, '
                f'{self.num_paired} paired; box error <= {self.max_box_error:.1e} px, score '
                f'error <= {self.max_score_error:.1e}, box IoU >= {self.min_box_iou:.6f}')
        if self.mask_pixel_error is not None:
            text += (f'; mask pixels differing {self.mask_pixel_error:.1e}, mask IoU >= '
                     f'{self.min_mask_iou:.4f}')
        return text


def pair_detections(reference: Dict[str, np.ndarray],
                    deployed: Dict[str, np.ndarray]) -> List[Tuple[int, int]]:
    """Greedy pairs ``(i, j)``: PyTorch detection ``i`` by decreasing score, with the unpaired
    deployed detection ``j`` of the same label and highest box IoU (> 0)."""
    iou = box_iou(reference['bboxes'], deployed['bboxes'])
    same_label = reference['labels'][:, None] == deployed['labels'][None, :]
    iou = np.where(same_label, iou, -1.)
    pairs, used = [], np.zeros(len(deployed['bboxes']), bool)
    for i in np.argsort(-reference['scores'], kind='stable'):
        if not len(used):
            break
        candidates = np.where(used, -1., iou[i])
        j = int(candidates.argmax())
        if candidates[j] > 0:
            used[j] = True
            pairs.append((int(i), j))
    return pairs


def compare_detections(reference: Any, deployed: Any) -> DetectionComparison:
    """Compare PyTorch's detections ``reference`` with a deployed model's ``deployed`` (see the
    module docstring)."""
    ref, dep = instances_to_numpy(reference), instances_to_numpy(deployed)
    pairs = pair_detections(ref, dep)
    result = DetectionComparison(len(ref['scores']), len(dep['scores']), len(pairs))
    if not pairs:
        return result
    i, j = map(np.array, zip(*pairs))
    result.max_box_error = float(np.abs(ref['bboxes'][i] - dep['bboxes'][j]).max())
    result.max_score_error = float(np.abs(ref['scores'][i] - dep['scores'][j]).max())
    result.min_box_iou = float(box_iou(ref['bboxes'][i], dep['bboxes'][j]).diagonal().min())
    if 'masks' in ref and 'masks' in dep:
        a, b = ref['masks'][i].astype(bool), dep['masks'][j].astype(bool)
        differ = (a ^ b).sum(axis=(1, 2))
        union = (a | b).sum(axis=(1, 2))
        result.mask_pixel_error = float(differ.sum() / max(a.sum(), 1))
        result.min_mask_iou = float(np.min(1 - differ / np.maximum(union, 1)))
    return result
