"""decode_yolo on the anchor-free layouts of Ultralytics exports (``yolo_v8``, ``yolo_end2end``),
against a straightforward per-row reference, and what filter_detections keeps of them against
OpenCV's NMS."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import clustered_boxes, opencv_nms

from edgecnn.errors import ModelError
from edgecnn.postprocess import decode_yolo, encode_yolo, filter_detections
from edgecnn.postprocess.decode import NORMALISED_LIMIT
from edgecnn.runtime.spec import OutputSpec

WIDTH, HEIGHT = 96, 64  # not square: x and y scale apart
V8 = OutputSpec(layout="yolo_v8", class_activation="none")
END2END = OutputSpec(layout="yolo_end2end", class_activation="none")


def _v8_rows(rng: np.random.Generator, n: int, num_classes: int, normalised: bool) -> np.ndarray:
    """``(n, 4 + C)`` rows of a head: centres all over the input, sizes 2..40 px, scores 0..1."""
    centre = rng.uniform(0, 1, (n, 2)) * (WIDTH, HEIGHT)
    size = rng.uniform(2, 40, (n, 2))
    boxes = np.concatenate([centre, size], axis=1)
    if normalised:
        boxes /= (WIDTH, HEIGHT, WIDTH, HEIGHT)
    return np.concatenate([boxes, rng.random((n, num_classes))], axis=1).astype(np.float32)


def _reference_v8(rows: np.ndarray, normalised: bool, activation: str, min_score: float | None):
    """One candidate at a time, as the layout is documented."""
    boxes, scores = [], []
    for row in rows.astype(np.float64):
        cx, cy, w, h = row[:4]
        if normalised:
            cx, w = cx * WIDTH, w * WIDTH
            cy, h = cy * HEIGHT, h * HEIGHT
        probs = row[4:]
        if activation == "sigmoid":
            probs = 1 / (1 + np.exp(-probs))
        elif activation == "softmax":
            probs = np.exp(probs - probs.max()) / np.exp(probs - probs.max()).sum()
        if min_score is not None and not probs.max() > min_score:
            continue
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        scores.append(probs)
    return np.array(boxes).reshape(-1, 4), np.array(scores).reshape(-1, rows.shape[1] - 4)


@pytest.mark.parametrize("normalised", [True, False], ids=["fractions", "pixels"])
@pytest.mark.parametrize("transposed", [False, True], ids=["4+C_by_N", "N_by_4+C"])
@pytest.mark.parametrize("activation", ["none", "sigmoid", "softmax"])
def test_yolo_v8_matches_the_reference(normalised: bool, transposed: bool, activation: str) -> None:
    rng = np.random.default_rng(7)
    for num_classes in (1, 3, 80):
        rows = _v8_rows(rng, 500, num_classes, normalised)
        if activation != "none":
            rows[:, 4:] = rng.normal(0, 3, (500, num_classes))  # logits
        output = (rows if transposed else rows.T)[None]  # Ultralytics' own is (1, 4 + C, N)
        spec = OutputSpec(layout="yolo_v8", class_activation=activation)
        for min_score in (None, 0.5):
            boxes, scores = decode_yolo([output], spec, WIDTH, HEIGHT, num_classes, min_objectness=min_score)
            want_boxes, want_scores = _reference_v8(rows, normalised, activation, min_score)
            assert boxes.dtype == scores.dtype == np.float32
            np.testing.assert_allclose(boxes, want_boxes, rtol=1e-5, atol=1e-3)
            np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
            assert 0 < len(boxes) <= 500


def test_units_are_told_by_the_largest_centre() -> None:
    """Fractions up to NORMALISED_LIMIT (2.0, as the docs say) are scaled; beyond it, pixels."""
    assert NORMALISED_LIMIT == 2.0
    rows = np.array([[0.5, 0.5, 0.2, 0.2, 0.9], [2.0, 1.0, 0.1, 0.1, 0.1]], np.float32)
    boxes, _ = decode_yolo([rows.T[None]], V8, WIDTH, HEIGHT, 1)
    np.testing.assert_allclose(boxes[0], [38.4, 25.6, 57.6, 38.4], rtol=1e-6)
    rows[1, 0] = 2.01  # one centre beyond the limit: all rows are pixels
    boxes, _ = decode_yolo([rows.T[None]], V8, WIDTH, HEIGHT, 1)
    np.testing.assert_allclose(boxes[0], [0.4, 0.4, 0.6, 0.6], rtol=1e-6)


def test_square_output_is_read_as_ultralytics_own_orientation() -> None:
    """(1, 4 + C, N) with N = 4 + C: rows are box, class channels (Ultralytics' layout)."""
    rows = np.zeros((5, 1 + 4), np.float32)  # 5 candidates, 1 class: a 5x5 output
    rows[:, :4] = [[10 + i, 20, 4, 6] for i in range(5)]
    rows[:, 4] = np.linspace(0.5, 0.9, 5)
    boxes, scores = decode_yolo([rows.T[None]], V8, WIDTH, HEIGHT, 1)
    np.testing.assert_allclose(boxes[:, 0], [8, 9, 10, 11, 12])
    np.testing.assert_allclose(scores[:, 0], rows[:, 4])


def _reference_end2end(rows: np.ndarray, num_classes: int, min_score: float | None):
    boxes, scores = [], []
    largest = rows[:, 2:4].max()
    for x1, y1, x2, y2, score, cls in rows.astype(np.float64):
        c = round(cls)
        if not 0 <= c < num_classes or (min_score is not None and not score > min_score):
            continue
        if largest <= 2.0:
            x1, x2, y1, y2 = x1 * WIDTH, x2 * WIDTH, y1 * HEIGHT, y2 * HEIGHT
        boxes.append([x1, y1, x2, y2])
        row = np.zeros(num_classes)
        row[c] = score
        scores.append(row)
    return np.array(boxes).reshape(-1, 4), np.array(scores).reshape(-1, num_classes)


@pytest.mark.parametrize("normalised", [True, False], ids=["fractions", "pixels"])
def test_yolo_end2end_matches_the_reference(normalised: bool) -> None:
    rng = np.random.default_rng(3)
    num_classes = 5
    rows = np.zeros((60, 6), np.float32)  # 40 detections, then zero padding as Ultralytics pads
    corner = rng.uniform(0, 0.7, (40, 2))
    rows[:40, :2] = corner
    rows[:40, 2:4] = corner + rng.uniform(0.05, 0.3, (40, 2))
    rows[:40, 4] = rng.random(40)
    rows[:40, 5] = rng.integers(-1, num_classes + 1, 40)  # -1 and 5 are no label: dropped
    rows[:3, 5] = [2.02, 3.98, 4.4]  # dequantised int8 class ids round to 2, 4, 4
    if not normalised:
        rows[:, :4] *= (WIDTH, HEIGHT, WIDTH, HEIGHT)
    for min_score in (None, 0.3):
        boxes, scores = decode_yolo([rows[None]], END2END, WIDTH, HEIGHT, num_classes, min_score)
        want_boxes, want_scores = _reference_end2end(rows, num_classes, min_score)
        np.testing.assert_allclose(boxes, want_boxes, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(scores, want_scores.astype(np.float32))
        assert 0 < len(boxes) < 60


def test_kept_sets_match_opencv_nms() -> None:
    """Decode + filter_detections keep what OpenCV keeps of the decoded boxes (conf 0.25, IoU
    0.7, Ultralytics' defaults), in the same order; end-to-end rows go through it alike."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        num_classes = [1, 3, 80][seed % 3]
        xyxy, scores, cls = clustered_boxes(rng, 2000, int(rng.integers(5, 40)), num_classes, size=WIDTH)
        xywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        class_scores = rng.random((len(cls), num_classes)) * 0.2  # other classes below conf
        class_scores[np.arange(len(cls)), cls] = scores
        rows = np.concatenate([xywh, class_scores], axis=1).astype(np.float32)
        output = [rows.T[None]] if seed % 2 else [rows[None]]
        boxes, decoded = decode_yolo(output, V8, WIDTH, WIDTH, num_classes, min_objectness=0.25)
        kept = filter_detections(boxes, decoded, conf=0.25, iou=0.7, max_det=300)

        # the oracle: boxes made from the rows here, OpenCV's NMS on those above conf
        centre, half = rows[:, :2], rows[:, 2:4] / 2
        ref_boxes = np.concatenate([centre - half, centre + half], axis=1)
        over = (rows[:, 4:].max(axis=1) > 0.25).nonzero()[0]
        best, best_class = rows[over, 4:].max(axis=1), rows[over, 4:].argmax(axis=1)
        want = over[opencv_nms(ref_boxes[over], best, best_class, 0.7)][:300]
        np.testing.assert_array_equal(kept.boxes, ref_boxes[want])
        np.testing.assert_array_equal(kept.class_ids, rows[want, 4:].argmax(axis=1))
        assert 0 < len(kept) < len(over)

        end2end = np.zeros((len(want) + 5, 6), np.float32)  # the same detections as NMS'd rows
        end2end[: len(want), :4] = ref_boxes[want]
        end2end[: len(want), 4] = rows[want, 4:].max(axis=1)
        end2end[: len(want), 5] = rows[want, 4:].argmax(axis=1)
        boxes, decoded = decode_yolo([end2end[None]], END2END, WIDTH, WIDTH, num_classes, 0.25)
        again = filter_detections(boxes, decoded, conf=0.25, iou=0.7, max_det=300)
        np.testing.assert_allclose(again.boxes, kept.boxes, atol=1e-3)  # NMS on them changes nothing
        np.testing.assert_array_equal(again.class_ids, kept.class_ids)


@pytest.mark.parametrize(
    ("spec", "shape", "message"),
    [
        (V8, (1, 8, 84), r"\(1, 7, N\) or \(1, N, 7\), got \(1, 8, 84\)"),
        (V8, (1, 7, 84, 1), r"must be \(1, rows, columns\)"),
        (END2END, (1, 300, 7), r"\(1, K, 6\).*got \(1, 300, 7\)"),
    ],
)
def test_outputs_that_do_not_fit_are_model_errors(spec: OutputSpec, shape: tuple, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        decode_yolo([np.zeros(shape, np.float32)], spec, 64, 64, 3)
    with pytest.raises(ModelError, match="has one output, got 2"):
        decode_yolo([np.zeros((1, 7, 84), np.float32)] * 2, spec, 64, 64, 3)


def test_encode_refuses_anchor_free_layouts() -> None:
    with pytest.raises(ValueError, match="anchor layout"):
        encode_yolo(np.array([[1, 1, 5, 5]]), np.array([0]), V8, 64, 64, 1)
