"""YOLO target assignment: targets decode back to the ground truth, across scales and anchors."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.postprocess import decode_yolo, encode_yolo
from edgecnn.runtime.spec import OutputSpec
from edgecnn.train.targets import YoloTargetFn, assigned_boxes, build_targets, target_key

V3 = OutputSpec(
    layout="yolo_v3",
    strides=[16, 32],
    anchors=[[(10, 14), (23, 27), (37, 58)], [(81, 82), (135, 169), (344, 319)]],
    class_activation="sigmoid",
)
V2 = OutputSpec(
    layout="yolo_v2",
    strides=[32],
    anchors=[[(18, 22), (60, 66), (107, 175), (252, 113), (313, 293)]],
    class_activation="softmax",
)
# Boxes of different sizes in different cells: no two share a (scale, cell, anchor) slot.
BOXES = np.array(
    [[5, 6, 17, 20], [100, 40, 124, 66], [200, 200, 240, 260], [30, 220, 115, 300], [150, 20, 290, 190]],
    np.float32,
)
CLASSES = np.array([0, 1, 2, 1, 0])


def _targets_as_raw(targets: dict, output: OutputSpec, size: int, num_classes: int) -> list[np.ndarray]:
    """Raw head tensors whose positives hold the target boxes: encode_yolo of each slot."""
    boxes, classes = assigned_boxes(targets, output.strides)
    return encode_yolo(boxes, classes, output, size, size, num_classes)


def _slots_as_raw(targets: dict, output: OutputSpec, size: int, num_classes: int) -> list[np.ndarray]:
    """Raw head tensors that decode each positive slot, in its own cell, to its target box
    (the inverse of the spec's decoding; fails where the box centre is out of the cell's reach)."""
    k = output.xy_scale
    raws = []
    for stride, anchors in zip(output.strides, output.anchors, strict=True):
        t = targets[target_key(stride)]
        raw = np.zeros((*t.shape[:3], 5 + num_classes), np.float32)
        raw[..., 4] = -20.0
        for row, col, a in np.argwhere(t[..., 4] > 0):
            x1, y1, x2, y2 = t[row, col, a, :4]
            frac = np.array([(x1 + x2) / 2 / stride - col, (y1 + y2) / 2 / stride - row])
            p = (frac + (k - 1) / 2) / k
            assert ((p > 0) & (p < 1)).all(), (row, col, a, frac)
            raw[row, col, a, :2] = np.log(p / (1 - p))
            raw[row, col, a, 2:4] = np.log(np.array([x2 - x1, y2 - y1]) / np.array(anchors[a]))
            raw[row, col, a, 4] = 20.0
            raw[row, col, a, 5 + int(t[row, col, a, 5])] = 20.0
        raws.append(raw.reshape(1, *t.shape[:2], -1))
    return raws


@pytest.mark.parametrize("output", [V3, V2], ids=["v3", "v2"])
def test_best_anchor_targets_decode_back_to_the_ground_truth(output: OutputSpec) -> None:
    targets = build_targets(BOXES, CLASSES, output, 320, 320, anchor_t=None)
    # One positive per box, each in the slot encode_yolo (the spec's inverse) picks.
    raw = encode_yolo(BOXES, CLASSES, output, 320, 320, 3)
    for stride, tensor in zip(output.strides, raw, strict=True):
        t = targets[target_key(stride)]
        encoded_pos = tensor.reshape((*t.shape[:3], 8))[..., 4] > 0
        np.testing.assert_array_equal(t[..., 4] > 0, encoded_pos)
    boxes, scores = decode_yolo(raw, output, 320, 320, 3)
    keep = scores.max(axis=1) > 0.5
    assert keep.sum() == len(BOXES)
    order = np.lexsort(boxes[keep].T[::-1])
    np.testing.assert_allclose(boxes[keep][order], BOXES[np.lexsort(BOXES.T[::-1])], atol=1e-3)
    np.testing.assert_array_equal(np.sort(scores[keep].argmax(axis=1)), np.sort(CLASSES))


def test_targets_store_boxes_classes_and_padding() -> None:
    targets = build_targets(BOXES, CLASSES, V3, 320, 320, anchor_t=None, max_boxes=8)
    assert set(targets) == {"targets_s16", "targets_s32", "boxes"}
    assert targets["targets_s16"].shape == (20, 20, 3, 6)
    assert targets["targets_s32"].shape == (10, 10, 3, 6)
    np.testing.assert_array_equal(targets["boxes"][:5], BOXES)
    assert not targets["boxes"][5:].any()
    boxes, _classes = assigned_boxes(targets, V3.strides)
    assert sorted(map(tuple, boxes.tolist())) == sorted(map(tuple, BOXES.tolist()))
    # The small box goes to the stride-16 scale, in the cell of its centre, anchor 0 (10x14).
    t16 = targets["targets_s16"]
    np.testing.assert_array_equal(t16[0, 0, 0], [5, 6, 17, 20, 1, 0])
    # Empty slots: objectness 0, class -1.
    assert (t16[..., 5][t16[..., 4] == 0] == -1).all()


def test_anchor_ratio_threshold_adds_positives_in_each_fitting_scale() -> None:
    box = np.array([[100, 100, 140, 150]], np.float32)  # 40 x 50
    best_only = build_targets(box, [2], V3, 320, 320, anchor_t=None)
    multi = build_targets(box, [2], V3, 320, 320, anchor_t=4.0)
    assert sum(best_only[target_key(s)][..., 4].sum() for s in V3.strides) == 1
    ratio = np.array([40, 50]) / np.array([a for scale in V3.anchors for a in scale])
    fitting = (np.maximum(ratio, 1 / ratio).max(axis=1) < 4.0).sum()
    assert sum(multi[target_key(s)][..., 4].sum() for s in V3.strides) == fitting == 4
    # Every positive holds the same box and class, in the cell of the centre (120, 125).
    for stride in V3.strides:
        t = multi[target_key(stride)]
        rows, cols, _ = np.nonzero(t[..., 4])
        assert set(rows) <= {125 // stride} and set(cols) <= {120 // stride}
        pos = t[t[..., 4] > 0]
        np.testing.assert_array_equal(pos[:, :4], np.repeat(box, len(pos), 0))
        assert (pos[:, 5] == 2).all()


def test_collisions_keep_best_anchor_claims_and_smaller_boxes() -> None:
    # Two boxes with the same centre and the same best anchor: the smaller one keeps the slot.
    boxes = np.array([[90, 90, 130, 140], [95, 95, 125, 135]], np.float32)
    t = build_targets(boxes, [0, 1], V3, 320, 320, anchor_t=None)
    pos = t["targets_s16"][t["targets_s16"][..., 4] > 0]
    assert len(pos) == 1 and pos[0, 5] == 1
    # With extra anchors, a best-anchor claim is never overwritten by another box's extra claim.
    t = build_targets(boxes, [0, 1], V3, 320, 320, anchor_t=4.0)
    ids = {tuple(r[:4]) for s in V3.strides for r in t[target_key(s)].reshape(-1, 6) if r[4] > 0}
    assert tuple(boxes[1]) in ids


def test_xy_scale_adds_the_neighbouring_cells_that_can_reach_the_centre() -> None:
    wide = V3.model_copy(update={"xy_scale": 2.0})
    # Centre (120, 125): stride 16 cell (7, 7) at fractions (0.5, 0.8125): only the cell below
    # (fraction > 0.5) is near enough; stride 32 cell (3, 3) at (0.75, 0.906): right and below.
    box = np.array([[100, 100, 140, 150]], np.float32)
    targets = build_targets(box, [2], wide, 320, 320, anchor_t=None)
    pos = {s: np.argwhere(targets[target_key(s)][..., 4] > 0).tolist() for s in wide.strides}
    assert pos == {16: [[7, 7, 2], [8, 7, 2]], 32: []}  # best anchor 37x58 at stride 16
    many = build_targets(box, [2], wide, 320, 320, anchor_t=4.0)
    cells32 = {tuple(rc) for rc in np.argwhere(many["targets_s32"][..., 4] > 0)[:, :2].tolist()}
    assert cells32 == {(3, 3), (3, 4), (4, 3)}
    # Every positive slot can decode back to the box: its offset lies within the cell's reach.
    for targets_ in (targets, many):
        raw = _slots_as_raw(targets_, wide, 320, 3)
        boxes, scores = decode_yolo(raw, wide, 320, 320, 3)
        keep = scores.max(axis=1) > 0.5
        assert keep.sum() == sum(targets_[target_key(s)][..., 4].sum() for s in wide.strides) > 1
        np.testing.assert_allclose(boxes[keep], np.repeat(box, keep.sum(), axis=0), atol=1e-3)
    # At the image border a neighbour outside the grid is skipped.
    corner = build_targets(np.array([[0, 0, 10, 14]], np.float32), [0], wide, 320, 320, anchor_t=None)
    assert np.argwhere(corner["targets_s16"][..., 4] > 0).tolist() == [[0, 0, 0]]


def test_centre_cell_claims_win_over_neighbour_claims() -> None:
    wide = V3.model_copy(update={"xy_scale": 2.0})
    # A (centre x 14): cell column 0 near its right edge, so it also claims column 1.
    # B (centre x 20): cell column 1 near its left edge, so it also claims column 0.
    # Same size, same best anchor: each cell keeps the box whose centre it holds.
    boxes = np.array([[0, 2, 28, 14], [6, 2, 34, 14]], np.float32)
    targets = build_targets(boxes, [0, 1], wide, 320, 320, anchor_t=None)
    t16 = targets["targets_s16"]
    (anchor,) = set(np.argwhere(t16[..., 4] > 0)[:, 2].tolist())
    np.testing.assert_array_equal(t16[0, 0, anchor], [0, 2, 28, 14, 1, 0])
    np.testing.assert_array_equal(t16[0, 1, anchor], [6, 2, 34, 14, 1, 1])


def test_degenerate_and_empty_inputs() -> None:
    t = build_targets(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), V3, 64, 64)
    assert all(not t[target_key(s)][..., 4].any() for s in V3.strides)
    t = build_targets(np.array([[10, 10, 10.5, 30]], np.float32), [0], V3, 64, 64)
    assert not t["targets_s16"][..., 4].any()  # narrower than a pixel: not assigned
    # Non-square inputs use ceil(size / stride) cells on each axis, like decode_yolo.
    t = build_targets(BOXES[:1], CLASSES[:1], V3, 96, 64)
    assert t["targets_s16"].shape[:2] == (4, 6) and t["targets_s32"].shape[:2] == (2, 3)


def test_target_fn_is_the_pipeline_callable() -> None:
    fn = YoloTargetFn(V3, 320, 320, anchor_t=None, max_boxes=10)
    out = fn(BOXES, CLASSES.astype(np.int32))
    assert fn.keys == ["targets_s16", "targets_s32", "boxes"]
    assert out["boxes"].shape == (10, 4)
    empty = fn(np.zeros((0, 4), np.float32), np.zeros(0, np.int32))
    assert {k: v.shape for k, v in empty.items()} == {k: v.shape for k, v in out.items()}
