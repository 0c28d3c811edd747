"""glmix_mm/deploy/detections.py: pairing and comparing detections (no deployment extra
needed)."""
import numpy as np
import pytest

from glmix_mm.deploy.detections import box_iou, compare_detections


def test_box_iou_matrix():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float32)  # the second box is empty
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 4)
    assert iou[0].tolist() == pytest.approx([1., 50 / 150, 0., 0.])
    assert iou[1].tolist() == [0., 0., 0., 0.]  # empty against empty: 0, not NaN
    assert box_iou(a, b[:0]).shape == (2, 0)


def test_compare_detections_pairs_by_label_and_overlap():
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    ref = dict(bboxes=boxes, scores=np.array([0.9, 0.5]), labels=np.array([0, 1]))
    same = dict(bboxes=boxes[::-1] + 1e-3, scores=np.array([0.5, 0.9]), labels=np.array([1, 0]))
    result = compare_detections(ref, same)
    assert result.num_paired == 2 and result.max_box_error == pytest.approx(1e-3, rel=1e-3)
    assert result.equal(1e-2, 1e-4, 1e-3)
    other_label = dict(same, labels=np.array([0, 1]))
    assert compare_detections(ref, other_label).num_paired == 0
    assert not compare_detections(ref, other_label).equal(1e-2, 1e-4, 1e-3)
