"""filter_detections: each step on its own, defaults, and a plain reference pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import clustered_boxes, docstring_defaults, opencv_nms, signature_defaults

from edgecnn.postprocess import Detections, filter_detections, letterbox
from edgecnn.runtime.spec import ThresholdSpec


def _grid_boxes(n: int) -> np.ndarray:
    """``n`` 10x10 boxes that never overlap."""
    xy = np.stack([np.arange(n) % 20 * 20.0, np.arange(n) // 20 * 20.0], axis=1)
    return np.concatenate([xy, xy + 10], axis=1)


def test_documented_defaults_match_the_signature_and_the_spec() -> None:
    stated = docstring_defaults(filter_detections)
    assert stated == signature_defaults(filter_detections)
    assert stated == {
        "conf": 0.25,
        "class_conf": None,
        "iou": 0.45,
        "class_iou": None,
        "classes": None,
        "agnostic": False,
        "max_det": 300,
        "max_nms": 30000,
    }
    spec = ThresholdSpec()
    assert (stated["conf"], stated["iou"], stated["max_det"]) == (spec.conf, spec.iou, spec.max_det)


def test_one_label_per_box_the_best_class() -> None:
    boxes = _grid_boxes(2)
    scores = np.array([[0.3, 0.9, 0.6], [0.7, 0.2, 0.1]])
    found = filter_detections(boxes, scores)
    assert found.class_ids.tolist() == [1, 0]
    np.testing.assert_allclose(found.scores, [0.9, 0.7])
    np.testing.assert_array_equal(found.boxes, boxes.astype(np.float32))


def test_confidence_must_exceed_the_threshold() -> None:
    boxes = _grid_boxes(4)
    scores = np.array([[0.25], [0.2500001], [0.9], [0.1]], np.float32)
    assert filter_detections(boxes, scores).scores.tolist() == pytest.approx([0.9, 0.2500001])
    assert len(filter_detections(boxes, scores, conf=0.95)) == 0
    assert len(filter_detections(boxes, scores, conf=0.0)) == 4


def test_per_class_confidence_replaces_the_global_one() -> None:
    boxes = _grid_boxes(4)
    scores = np.array([[0.5, 0.0], [0.0, 0.5], [0.3, 0.0], [0.0, 0.3]])
    found = filter_detections(boxes, scores, conf=0.4, class_conf={1: 0.2})
    pairs = zip(found.class_ids.tolist(), found.scores.astype(float).round(3).tolist(), strict=True)
    assert sorted(pairs) == [(0, 0.5), (1, 0.3), (1, 0.5)]
    found = filter_detections(boxes, scores, conf=0.4, class_conf={0: 0.6, 7: 0.1})
    assert found.class_ids.tolist() == [1]


def test_class_filter() -> None:
    boxes = _grid_boxes(6)
    scores = np.eye(3)[[0, 1, 2, 0, 1, 2]] * 0.9
    assert sorted(filter_detections(boxes, scores, classes=[2, 0]).class_ids.tolist()) == [0, 0, 2, 2]
    assert len(filter_detections(boxes, scores, classes=[])) == 0


def test_max_nms_keeps_the_best_scores_before_nms() -> None:
    boxes = _grid_boxes(50)
    scores = np.linspace(0.3, 0.8, 50)[:, None]
    found = filter_detections(boxes, scores, max_nms=5)
    np.testing.assert_allclose(found.scores, scores[-5:, 0][::-1], rtol=1e-6)
    # The cap runs before NMS: capped boxes cannot suppress anything.
    stacked = np.concatenate([boxes[:1], boxes[:1] + 1])
    found = filter_detections(stacked, np.array([[0.9], [0.8]]), max_nms=1)
    assert found.scores.tolist() == pytest.approx([0.9])


def test_max_det_caps_after_nms() -> None:
    boxes = np.concatenate([_grid_boxes(10), _grid_boxes(10) + 0.5])  # each box has a twin
    scores = np.concatenate([np.linspace(0.5, 0.9, 10), np.linspace(0.51, 0.91, 10)])[:, None]
    found = filter_detections(boxes, scores, max_det=3)
    np.testing.assert_allclose(found.scores, [0.91, 0.8655556, 0.8211111], rtol=1e-5)
    assert len(filter_detections(boxes, scores)) == 10


def test_class_aware_agnostic_and_per_class_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], float)  # IoU(0, 1) = 9/11
    scores = np.array([[0.9, 0.0], [0.0, 0.8], [0.0, 0.7]])
    assert filter_detections(boxes, scores).class_ids.tolist() == [0, 1]
    assert filter_detections(boxes, scores, agnostic=True).class_ids.tolist() == [0]
    assert filter_detections(boxes, scores, class_iou={1: 0.95}).class_ids.tolist() == [0, 1, 1]
    assert filter_detections(boxes, scores, iou=0.95, class_iou={1: 0.45}).class_ids.tolist() == [0, 1]
    with pytest.raises(ValueError, match="agnostic"):
        filter_detections(boxes, scores, agnostic=True, class_iou={1: 0.5})


def _reference(boxes: np.ndarray, scores: np.ndarray, conf: float, iou: float, max_det: int) -> list[int]:
    """The same pipeline written plainly, with OpenCV's NMS class by class."""
    candidates = []
    for i, row in enumerate(scores):
        c = int(np.argmax(row))
        if np.float32(row[c]) > np.float32(conf):
            candidates.append((i, c, np.float32(row[c])))
    kept = []
    for c in {c for _, c, _ in candidates}:
        idx = np.array([i for i, k, _ in candidates if k == c])
        s = np.array([s for _, k, s in candidates if k == c])
        survivors = opencv_nms(boxes[idx], s, np.zeros(idx.size, int), iou)
        kept += [(s[j], idx[j]) for j in survivors]
    kept.sort(key=lambda t: (-t[0], t[1]))
    return [i for _, i in kept[:max_det]]


def test_matches_a_plain_reference_pipeline() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        boxes, _, cls = clustered_boxes(rng, 2000, 40, 6)
        boxes = np.round(boxes * 4) / 4  # exact in float32 too
        scores = rng.random((2000, 6)) * 0.3
        scores[np.arange(2000), cls] += rng.random(2000) * 0.7
        found = filter_detections(boxes, scores, conf=0.3, iou=0.5, max_det=50)
        want = _reference(boxes, scores.astype(np.float32), 0.3, 0.5, 50)
        np.testing.assert_array_equal(found.boxes, boxes[want].astype(np.float32))
        np.testing.assert_array_equal(found.class_ids, scores[want].argmax(axis=1))


def test_detections_container() -> None:
    empty = filter_detections(np.zeros((0, 4)), np.zeros((0, 3)))
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)
    assert len(Detections.empty()) == 0
    one = filter_detections(np.array([[10, 20, 30, 40]]), np.array([0.9]))
    assert len(one) == 1 and one.class_ids.dtype == np.int64 and one.scores.dtype == np.float32
    _, transform = letterbox(np.zeros((100, 200, 3), np.uint8), 64, 64)  # scale 0.32, pad_y 16
    np.testing.assert_allclose(one.to_source(transform).boxes, [[31.25, 12.5, 93.75, 75.0]])
    with pytest.raises(ValueError, match="score rows"):
        filter_detections(np.zeros((2, 4)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="at least 1"):
        filter_detections(np.zeros((2, 4)), np.zeros((2, 1)), max_det=0)


def test_user_docs_state_the_same_defaults() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "postprocess.md").read_text()
    stated = {name: float(value) for name, value in re.findall(r"`(\w+)`[^`(\n]*\(default ([\d.]+)", text)}
    assert stated == {"conf": 0.25, "max_nms": 30000, "iou": 0.45, "max_det": 300}
    defaults = signature_defaults(filter_detections)
    assert all(defaults[name] == value for name, value in stated.items())
