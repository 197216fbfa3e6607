"""YOLO decoding against the spec's formulas, and encode/decode round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import docstring_defaults, signature_defaults

from edgecnn.errors import ModelError
from edgecnn.postprocess import decode_yolo, encode_yolo, filter_detections
from edgecnn.runtime.spec import OutputSpec

V3 = OutputSpec(
    layout="yolo_v3",
    anchors=[
        [(12, 16), (19, 36), (40, 28)],
        [(36, 75), (76, 55), (72, 146)],
        [(142, 110), (192, 243), (459, 401)],
    ],
    strides=[8, 16, 32],
    class_activation="sigmoid",
)
V2 = OutputSpec(
    layout="yolo_v2", anchors=[[(20, 25), (60, 50), (120, 140)]], strides=[32], class_activation="softmax"
)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _random_boxes(rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    wh = rng.uniform(10, 200, (n, 2))
    centre = rng.uniform([0, 0], [width, height], (n, 2))
    return np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)


def test_decode_follows_the_spec_formulas() -> None:
    spec = OutputSpec(layout="yolo_v3", anchors=[[(10, 20), (30, 40)], [(50, 60)]], strides=[16, 32])
    c = 3
    rng = np.random.default_rng(0)
    fine = rng.normal(0, 1, (1, 4, 6, 2 * (5 + c))).astype(np.float32)  # 64x96 input, stride 16
    coarse = rng.normal(0, 1, (1, 2, 3, 1 * (5 + c))).astype(np.float32)  # stride 32
    boxes, scores = decode_yolo([coarse, fine], spec, 96, 64, c)
    assert boxes.shape == (4 * 6 * 2 + 2 * 3, 4) and scores.shape == (54, 3)
    assert boxes.dtype == scores.dtype == np.float32
    # Row order: scale (ascending stride), then row, column, anchor.
    for row, (raw, stride, anchors, r, col, a) in enumerate(
        [(fine, 16, spec.anchors[0], r, col, a) for r in range(4) for col in range(6) for a in range(2)]
        + [(coarse, 32, spec.anchors[1], r, col, 0) for r in range(2) for col in range(3)]
    ):
        t = raw[0, r, col, a * (5 + c) : (a + 1) * (5 + c)].astype(float)
        cx = (_sigmoid(t[0]) + col) * stride
        cy = (_sigmoid(t[1]) + r) * stride
        w = anchors[a][0] * math.exp(t[2])
        h = anchors[a][1] * math.exp(t[3])
        np.testing.assert_allclose(boxes[row], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=1e-5)
        want = [_sigmoid(t[4]) * _sigmoid(v) for v in t[5:]]
        np.testing.assert_allclose(scores[row], want, rtol=1e-5)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
def test_class_activation_is_honoured(activation: str) -> None:
    spec = OutputSpec(layout="yolo_v2", anchors=[[(32, 32)]], strides=[32], class_activation=activation)
    raw = np.zeros((1, 1, 1, 5 + 3), np.float32)
    raw[..., 4] = 2.0
    raw[..., 5:] = [0.2, 0.5, 0.1]
    _, scores = decode_yolo([raw], spec, 32, 32, 3)
    logits = np.array([0.2, 0.5, 0.1])
    probs = {
        "softmax": np.exp(logits) / np.exp(logits).sum(),
        "sigmoid": 1 / (1 + np.exp(-logits)),
        "none": logits,
    }[activation]
    np.testing.assert_allclose(scores[0], _sigmoid(2.0) * probs, rtol=1e-6)


@pytest.mark.parametrize("k", [1.5, 2.0])
def test_xy_scale_widens_the_centre_range(k: float) -> None:
    spec = OutputSpec(layout="yolo_v3", anchors=[[(10, 20)]], strides=[16], xy_scale=k)
    rng = np.random.default_rng(3)
    raw = rng.normal(0, 3, (1, 2, 3, 6)).astype(np.float32)
    boxes, _ = decode_yolo([raw], spec, 48, 32, 1)
    for row, (r, col) in enumerate((r, col) for r in range(2) for col in range(3)):
        t = raw[0, r, col].astype(float)
        cx = (k * _sigmoid(t[0]) - (k - 1) / 2 + col) * 16
        cy = (k * _sigmoid(t[1]) - (k - 1) / 2 + r) * 16
        np.testing.assert_allclose(boxes[row, [0, 2]].mean(), cx, atol=0.02)  # float32 corners
        np.testing.assert_allclose(boxes[row, [1, 3]].mean(), cy, atol=0.02)
    # A cell's centres reach (k - 1) / 2 of a cell beyond its edges, and no further.
    extreme = np.zeros((1, 1, 1, 6), np.float32)
    extreme[..., :2] = [-30, 30]
    box, _ = decode_yolo([extreme], spec.model_copy(update={"strides": [16]}), 16, 16, 1)
    np.testing.assert_allclose(box[0, [0, 2]].mean(), -(k - 1) / 2 * 16, atol=1e-3)
    np.testing.assert_allclose(box[0, [1, 3]].mean(), (1 + (k - 1) / 2) * 16, atol=1e-3)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
@pytest.mark.parametrize(
    "spec",
    [V3, V2, V3.model_copy(update={"xy_scale": 2.0})],
    ids=["yolo_v3", "yolo_v2", "yolo_v3_xy2"],
)
def test_round_trip_recovers_the_boxes(spec: OutputSpec, activation: str) -> None:
    spec = spec.model_copy(update={"class_activation": activation})
    width, height, c = 320, 256, 7
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 12, width, height)
    classes = rng.integers(0, c, 12)
    tensors = encode_yolo(boxes, classes, spec, width, height, c)
    assert [t.shape for t in tensors] == [
        (1, math.ceil(height / s), math.ceil(width / s), 3 * (5 + c)) for s in spec.strides
    ]
    decoded, scores = decode_yolo(tensors[::-1], spec, width, height, c)  # any output order
    found = filter_detections(decoded, scores, conf=0.5, iou=0.99)
    # Encoding may put two boxes on one anchor (the later wins): compare what survived.
    order = np.lexsort((found.boxes[:, 1], found.boxes[:, 0]))
    matched = 0
    for box, cls in zip(found.boxes[order], found.class_ids[order], strict=True):
        i = int(np.argmin(np.abs(boxes - box).sum(axis=1)))
        np.testing.assert_allclose(box, boxes[i], atol=2e-3)
        assert cls == classes[i]
        matched += 1
    assert matched >= 10
    assert np.all(found.scores > 0.99)
    background = np.delete(scores.max(axis=1), scores.max(axis=1).argsort()[-matched:])
    assert background.max() < 1e-3


def test_round_trip_with_one_box_per_anchor_is_exact_in_count() -> None:
    spec = V3
    width = height = 256
    boxes = np.array([[10, 10, 30, 30], [100, 40, 180, 120], [0, 0, 250, 250], [200, 200, 215, 230]], float)
    classes = np.array([0, 1, 2, 1])
    decoded, scores = decode_yolo(encode_yolo(boxes, classes, spec, width, height, 3), spec, width, height, 3)
    found = filter_detections(decoded, scores, conf=0.5)
    assert len(found) == 4
    got = np.lexsort((found.boxes[:, 1], found.boxes[:, 0]))
    want = np.lexsort((boxes[:, 1], boxes[:, 0]))
    np.testing.assert_allclose(found.boxes[got], boxes[want], atol=2e-3)
    np.testing.assert_array_equal(found.class_ids[got], classes[want])


def test_min_objectness_keeps_the_same_boxes() -> None:
    rng = np.random.default_rng(4)
    tensors = [rng.normal(-2, 2, (1, 320 // s, 320 // s, 3 * (5 + 4))).astype(np.float32) for s in V3.strides]
    boxes, scores = decode_yolo(tensors, V3, 320, 320, 4)
    objectness = 1 / (1 + np.exp(-np.concatenate([t.reshape(-1, 9)[:, 4] for t in tensors])))
    fast_boxes, fast_scores = decode_yolo(tensors, V3, 320, 320, 4, min_objectness=0.5)
    keep = objectness > 0.5
    assert 0 < keep.sum() < keep.size
    np.testing.assert_allclose(fast_boxes, boxes[keep], rtol=1e-6)
    np.testing.assert_allclose(fast_scores, scores[keep], rtol=1e-6)
    # Confidence never exceeds objectness, so filtering at the same threshold loses nothing.
    full = filter_detections(boxes, scores, conf=0.5)
    fast = filter_detections(fast_boxes, fast_scores, conf=0.5)
    np.testing.assert_array_equal(full.boxes, fast.boxes)


def test_decoding_two_input_sizes_uses_fresh_grids() -> None:
    spec = OutputSpec(layout="yolo_v2", anchors=[[(16, 16)]], strides=[16])
    for size in (64, 128, 64):
        raw = np.zeros((1, size // 16, size // 16, 6), np.float32)
        boxes, _ = decode_yolo([raw], spec, size, size, 1)
        # Last cell, centre offset sigmoid(0) = 0.5, anchor width 16 * exp(0).
        assert boxes[-1].tolist() == [size - 16, size - 16, size, size]


def test_decode_rejects_outputs_that_do_not_fit() -> None:
    good = [np.zeros((1, 320 // s, 320 // s, 3 * 9), np.float32) for s in V3.strides]
    decode_yolo(good, V3, 320, 320, 4)
    with pytest.raises(ModelError, match="3 scales, got 2"):
        decode_yolo(good[:2], V3, 320, 320, 4)
    with pytest.raises(ModelError, match="stride 8 needs a 40x40x30"):
        decode_yolo(good, V3, 320, 320, 5)
    with pytest.raises(ModelError, match="stride 8 needs"):
        decode_yolo([good[1], good[1], good[2]], V3, 320, 320, 4)
    with pytest.raises(ModelError, match="dequantised"):
        decode_yolo([t.astype(np.int8) for t in good], V3, 320, 320, 4)
    with pytest.raises(ValueError, match="yolo layout"):
        decode_yolo(good, OutputSpec(layout="classes"), 320, 320, 4)


def test_encode_rejects_bad_boxes() -> None:
    with pytest.raises(ValueError, match="positive width"):
        encode_yolo(np.array([[10, 10, 5, 20]]), [0], V2, 64, 64, 2)
    with pytest.raises(ValueError, match="class ids"):
        encode_yolo(np.array([[10, 10, 20, 20]]), [2], V2, 64, 64, 2)
    empty = encode_yolo(np.zeros((0, 4)), [], V2, 64, 64, 2)
    assert filter_detections(*decode_yolo(empty, V2, 64, 64, 2), conf=0.01).scores.size == 0


def test_documented_defaults_match_the_signatures() -> None:
    assert docstring_defaults(decode_yolo) == signature_defaults(decode_yolo) == {"min_objectness": None}
    assert (
        docstring_defaults(encode_yolo)
        == signature_defaults(encode_yolo)
        == {"objectness": 0.999, "background": 1e-4}
    )
