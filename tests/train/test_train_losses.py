"""The detection and classification losses, on outputs written by encode_yolo (the spec's inverse)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgecnn.postprocess import encode_yolo
from edgecnn.runtime.spec import OutputSpec
from edgecnn.train.targets import build_targets

pytestmark = pytest.mark.tf
tf = pytest.importorskip("tensorflow")

from edgecnn.train.losses import LossConfig, YoloLoss, box_iou, classification_loss  # noqa: E402

V3 = OutputSpec(
    layout="yolo_v3",
    strides=[16, 32],
    anchors=[[(10, 14), (23, 27), (37, 58)], [(81, 82), (135, 169), (344, 319)]],
    class_activation="sigmoid",
)
V2 = OutputSpec(
    layout="yolo_v2", strides=[32], anchors=[[(18, 22), (60, 66), (107, 175)]], class_activation="softmax"
)
BOXES = np.array([[5, 6, 17, 20], [100, 40, 124, 66], [200, 200, 240, 260], [30, 220, 115, 300]], np.float32)
CLASSES = np.array([0, 1, 2, 1])
SIZE, NC = 320, 3


def _batch(targets: dict) -> dict:
    return {k: tf.constant(v[None]) for k, v in targets.items()}


def _loss(
    output: OutputSpec, raw: list[np.ndarray], boxes=BOXES, classes=CLASSES, **cfg
) -> tuple[float, dict]:
    targets = build_targets(boxes, classes, output, SIZE, SIZE, anchor_t=None)
    fn = YoloLoss(output, SIZE, SIZE, NC, LossConfig(**cfg))
    total, parts = fn(_batch(targets), [tf.constant(r) for r in raw])
    return float(total), {k: float(v) for k, v in parts.items()}


@pytest.mark.parametrize("output", [V3, V2], ids=["v3", "v2"])
def test_loss_is_near_zero_for_perfect_predictions_and_grows_with_errors(output: OutputSpec) -> None:
    perfect = encode_yolo(BOXES, CLASSES, output, SIZE, SIZE, NC, objectness=0.9999, background=1e-5)
    total, parts = _loss(output, perfect)
    assert total < 1e-4, parts
    assert parts["box"] < 1e-5

    rng = np.random.default_rng(0)
    shifted = [r.copy() for r in perfect]
    pos = [r.reshape((*r.shape[:3], -1, 5 + NC))[..., 4] > 0 for r in shifted]
    for r, p in zip(shifted, pos, strict=True):
        v = r.reshape((*r.shape[:3], -1, 5 + NC))
        v[..., :4][p] += rng.normal(0, 0.5, (p.sum(), 4)).astype(np.float32)
    assert _loss(output, shifted)[1]["box"] > 100 * parts["box"] + 1e-3

    wrong_class = encode_yolo(BOXES, (CLASSES + 1) % NC, output, SIZE, SIZE, NC)
    assert _loss(output, wrong_class)[1]["cls"] > 100 * max(parts["cls"], 1e-6)

    missed = encode_yolo(BOXES[:2], CLASSES[:2], output, SIZE, SIZE, NC)
    assert _loss(output, missed)[1]["obj"] > 100 * max(parts["obj"], 1e-6)


def test_ignore_mask_spares_negatives_that_overlap_a_ground_truth() -> None:
    """A confident prediction at a non-assigned anchor costs objectness only when its box
    overlaps no ground truth by more than ignore_iou."""
    box = np.array([[100, 100, 160, 160]], np.float32)  # best anchor: 37x58 at stride 16
    base = encode_yolo(box, [0], V3, SIZE, SIZE, NC, objectness=0.9999, background=1e-5)

    s32 = OutputSpec(layout="yolo_v3", strides=[32], anchors=[V3.anchors[1]], class_activation="sigmoid")

    def with_extra(extra_box: np.ndarray) -> float:
        # A second, confident prediction of extra_box at stride 32 (not the assigned scale).
        other = encode_yolo(extra_box, [0], s32, SIZE, SIZE, NC, objectness=0.9999, background=1e-5)
        raw = [base[0], other[0]]
        return _loss(V3, raw, boxes=box, classes=np.array([0]), ignore_iou=0.5)[1]["obj"]

    ref = _loss(V3, base, boxes=box, classes=np.array([0]))[1]["obj"]
    overlapping = with_extra(np.array([[102, 98, 162, 162]], np.float32))  # IoU ~0.9 with the GT
    elsewhere = with_extra(np.array([[250, 250, 300, 300]], np.float32))  # IoU 0
    assert overlapping == pytest.approx(ref, abs=1e-6)
    assert elsewhere > ref + 1e-3
    # With the threshold above the overlap, the overlapping prediction is penalised too.
    targets = build_targets(box, [0], V3, SIZE, SIZE, anchor_t=None)
    other = encode_yolo(np.array([[102, 98, 162, 162]], np.float32), [0], s32, SIZE, SIZE, NC, 0.9999, 1e-5)
    strict = YoloLoss(V3, SIZE, SIZE, NC, LossConfig(ignore_iou=0.99))
    _, parts = strict(_batch(targets), [tf.constant(base[0]), tf.constant(other[0])])
    assert float(parts["obj"]) > ref + 1e-3


def test_empty_images_have_finite_loss_and_gradients() -> None:
    targets = build_targets(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), V3, SIZE, SIZE)
    raw = [tf.Variable(tf.random.normal((1, 20, 20, 24))), tf.Variable(tf.random.normal((1, 10, 10, 24)))]
    fn = YoloLoss(V3, SIZE, SIZE, NC)
    with tf.GradientTape() as tape:
        total, parts = fn(_batch(targets), raw)
    grads = tape.gradient(total, raw)
    assert float(parts["box"]) == 0 and float(parts["cls"]) == 0 and float(parts["obj"]) > 0
    assert all(np.isfinite(g.numpy()).all() for g in grads)


def test_box_iou_variants() -> None:
    a = tf.constant([[0.0, 0.0, 10.0, 10.0]])
    assert float(box_iou(a, a, "ciou")[0]) == pytest.approx(1.0, abs=1e-6)
    b = tf.constant([[5.0, 0.0, 15.0, 10.0]])
    assert float(box_iou(a, b, "iou")[0]) == pytest.approx(50 / 150)
    assert float(box_iou(a, b, "giou")[0]) == pytest.approx(50 / 150 - (150 - 150) / 150)
    far = tf.constant([[20.0, 0.0, 30.0, 10.0]])
    # GIoU: enclosing 30x10 = 300, union 200: 0 - 100/300; CIoU: centre distance 20^2 / diagonal 30^2 + 10^2.
    assert float(box_iou(a, far, "giou")[0]) == pytest.approx(-1 / 3, abs=1e-5)
    assert float(box_iou(a, far, "ciou")[0]) == pytest.approx(-400 / 1000, abs=1e-5)
    empty = tf.zeros((1, 4))
    assert np.isfinite(box_iou(a, empty, "ciou").numpy()).all()


def test_classification_loss_with_label_smoothing() -> None:
    labels = tf.constant([[0.0, 1.0, 0.0]])
    logits = tf.constant([[0.0, 0.0, 0.0]])
    loss, _ = classification_loss(labels, logits)
    assert float(loss) == pytest.approx(math.log(3), rel=1e-5)
    confident = tf.constant([[-20.0, 20.0, -20.0]])
    assert float(classification_loss(labels, confident)[0]) < 1e-6
    smoothed = float(classification_loss(labels, confident, label_smoothing=0.3)[0])
    assert smoothed > 1.0  # smoothing penalises over-confidence
