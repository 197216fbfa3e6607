"""Anchor k-means with the IoU distance, and anchors fitted to a split for a model input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecnn.data import ImageRecord, Split, load_split
from edgecnn.errors import UserError
from edgecnn.postprocess.letterbox import letterbox, stretch
from edgecnn.runtime.spec import InputSpec
from edgecnn.train.anchors import (
    BPR_IOU,
    anchor_fitness,
    anchors_for_model,
    input_box_sizes,
    kmeans_anchors,
    wh_iou,
)

CENTRES = np.array([[8, 10], [24, 14], [16, 40], [60, 50], [120, 90], [50, 150]], np.float64)


def _clusters(seed: int = 0, per: int = 150, spread: float = 0.06) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c * np.exp(rng.normal(0, spread, (per, 2))) for c in CENTRES])


def test_wh_iou_of_corner_aligned_boxes() -> None:
    iou = wh_iou([[10, 10], [20, 5]], [[10, 10], [5, 20], [20, 20]])
    np.testing.assert_allclose(iou, [[1, 50 / 150, 0.25], [50 / 150, 25 / 175, 0.25]])


def test_recovers_known_cluster_centres_sorted_by_area() -> None:
    anchors = kmeans_anchors(_clusters(), 6, seed=0)
    order = np.argsort(CENTRES.prod(axis=1))
    np.testing.assert_allclose(anchors, CENTRES[order], rtol=0.05)
    assert (np.diff(anchors.prod(axis=1)) > 0).all()


def test_deterministic_and_better_than_random_centres() -> None:
    wh = _clusters(seed=1, spread=0.3)
    a, b = kmeans_anchors(wh, 6, seed=3), kmeans_anchors(wh, 6, seed=3)
    np.testing.assert_array_equal(a, b)
    fitted = anchor_fitness(wh, a)[0]
    picked = anchor_fitness(wh, wh[np.random.default_rng(0).choice(len(wh), 6)])[0]
    assert fitted > picked


def test_too_few_boxes_is_a_user_error() -> None:
    with pytest.raises(UserError, match="too few for 6 anchors"):
        kmeans_anchors(CENTRES[:5], 6)
    with pytest.raises(UserError, match="2 distinct sizes"):
        kmeans_anchors([[10, 10]] * 5 + [[20, 20]] * 5, 3)
    np.testing.assert_array_equal(kmeans_anchors(CENTRES[:3], 3), CENTRES[:3])  # exactly k: the boxes


def test_fitness_and_bpr() -> None:
    wh = np.array([[10, 10], [10, 10], [10, 40]])
    fitness, bpr = anchor_fitness(wh, [[10, 10]])
    assert fitness == pytest.approx((1 + 1 + 0.25) / 3)
    assert bpr == pytest.approx(2 / 3) and BPR_IOU == 0.5


@pytest.mark.parametrize(
    "spec",
    [InputSpec(width=96, height=64), InputSpec(width=64, height=64, resize="stretch")],
    ids=["lb", "st"],
)
def test_input_box_sizes_scale_like_the_resize(spec: InputSpec) -> None:
    record = ImageRecord(Path("x.jpg"), 1, 123, 77, [[0, 0, 123, 77], [10, 5, 40, 30]], [0, 1])
    split = Split("train", "detect", "coco", ["a", "b"], [record, ImageRecord(Path("y.jpg"), 2, 10, 10)])
    image = np.zeros((77, 123), np.uint8)
    _, info = (
        letterbox(image, spec.width, spec.height) if spec.resize == "letterbox" else stretch(image, 64, 64)
    )
    boxes = info.to_input(record.boxes)
    np.testing.assert_allclose(
        input_box_sizes(split, spec),
        np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1),
        rtol=1e-6,
    )


def test_anchors_for_model_deals_small_anchors_to_the_small_stride(synth_root: Path) -> None:
    split = load_split(synth_root, "train")
    spec = InputSpec(width=128, height=128)
    fit = anchors_for_model(split, spec, num_scales=2, anchors_per_scale=3)
    assert [len(scale) for scale in fit.anchors] == [3, 3]
    flat = np.array([a for scale in fit.anchors for a in scale])
    assert (np.diff(flat.prod(axis=1)) >= 0).all()
    assert max(a[0] * a[1] for a in fit.anchors[0]) <= min(a[0] * a[1] for a in fit.anchors[1])
    wh = input_box_sizes(split, spec)  # boxes are 64 -> 128 px: twice their size in the files
    np.testing.assert_allclose(
        wh[0], 2 * (split.records[0].boxes[0, 2:] - split.records[0].boxes[0, :2]), rtol=1e-6
    )
    assert fit.num_boxes == len(wh) == split.num_boxes
    assert (fit.fitness, fit.bpr) == pytest.approx(anchor_fitness(wh, flat))
    assert fit.fitness > 0.7 and fit.bpr > 0.9
    assert anchors_for_model(split, spec, 2, 3) == fit  # deterministic
    with pytest.raises(UserError, match="too few"):
        anchors_for_model(Split("val", "detect", "coco", ["a"], split.records[:1]), spec, 2, 3)


def test_input_box_sizes_leave_out_crowd_and_difficult_boxes() -> None:
    spec = InputSpec(width=123, height=77, resize="stretch")
    boxes = [[0, 0, 10, 10], [0, 0, 20, 30], [0, 0, 40, 50]]
    crowd = ImageRecord(Path("x.jpg"), 1, 123, 77, boxes, [0, 0, 0], iscrowd=[False, True, False])
    difficult = ImageRecord(Path("y.jpg"), 2, 123, 77, boxes, [0, 0, 0], difficult=[False, False, True])
    split = Split("train", "detect", "coco", ["a"], [crowd, difficult])
    np.testing.assert_allclose(input_box_sizes(split, spec), [[10, 10], [40, 50], [10, 10], [20, 30]])
