"""batched_nms against OpenCV's cv2.dnn.NMSBoxesBatched as the oracle."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import clustered_boxes, docstring_defaults, opencv_nms, signature_defaults, uniform_boxes

import edgecnn.postprocess.nms as nms_module
from edgecnn.postprocess import batched_nms


def _check(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    got = batched_nms(boxes, scores, class_ids, iou)
    want = opencv_nms(boxes, scores, class_ids, iou)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    return got


@pytest.mark.parametrize("num_classes", [1, 3, 80])
@pytest.mark.parametrize("kind", ["clustered", "uniform"])
def test_matches_opencv_on_1k_boxes(kind: str, num_classes: int) -> None:
    for seed in range(8):
        rng = np.random.default_rng(1000 * num_classes + seed)
        if kind == "clustered":
            boxes, scores, cls = clustered_boxes(rng, 1000, int(rng.integers(5, 60)), num_classes)
        else:
            boxes, scores, cls = uniform_boxes(rng, 1000, num_classes)
        iou = [0.45, 0.5, 0.3, 0.7][seed % 4]
        kept = _check(boxes, scores, cls, iou)
        assert 0 < kept.size < 1000 or (kind, num_classes) == ("uniform", 80)


@pytest.mark.parametrize("num_classes", [1, 10, 80])
def test_matches_opencv_on_10k_boxes(num_classes: int) -> None:
    rng = np.random.default_rng(num_classes)
    _check(*clustered_boxes(rng, 10_000, 100, num_classes), iou=0.45)
    _check(*uniform_boxes(rng, 10_000, num_classes, size=2000.0), iou=0.5)


@pytest.mark.parametrize("n", [1, 2, 5, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300])
def test_matches_opencv_around_block_sizes(n: int) -> None:
    # Up to 64 boxes every pair is tested; up to 128 one block holds everything; beyond,
    # blocks of 128 suppress the boxes after them.
    for seed in range(5):
        rng = np.random.default_rng(seed)
        _check(*clustered_boxes(rng, n, max(1, n // 10), 2, size=200.0), iou=0.45)


@pytest.mark.parametrize("n", [3, 17, 40, 64, 65, 100, 128])
def test_small_sets_match_opencv_with_ties_and_exact_ratios(n: int) -> None:
    # The sets that are solved in one step (every pair, or one block): integer boxes whose
    # IoUs hit the thresholds exactly, scores with many ties, one to three classes.
    for seed in range(12):
        rng = np.random.default_rng(100 * n + seed)
        xy = rng.integers(0, 12, (n, 2))
        wh = rng.integers(1, 8, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(float)
        scores = rng.integers(0, 6, n).astype(np.float32) / 6
        cls = rng.integers(0, 1 + seed % 3, n)
        for iou in (0.0, 1 / 3, 0.45, 0.5, 0.6, 0.75, 1.0):
            _check(boxes, scores, cls, iou)


def test_classes_with_a_single_box_match_opencv() -> None:
    rng = np.random.default_rng(21)
    boxes, scores, cls = clustered_boxes(rng, 1000, 30, 3)
    # Every box its own class: nothing is suppressed.
    assert _check(boxes, scores, np.arange(1000), 0.45).size == 1000
    # Busy classes mixed with hundreds of one-box classes, on top of the busy ones.
    lonely = rng.random(1000) < 0.3
    mixed = np.where(lonely, 3 + np.arange(1000), cls)
    kept = _check(boxes, scores, mixed, 0.45)
    assert np.isin(np.flatnonzero(lonely), kept).all()
    # Small sets, where single-box classes sit next to pairs that suppress.
    for n in (2, 9, 70):
        for seed in range(6):
            rng = np.random.default_rng(seed)
            boxes, scores, cls = clustered_boxes(rng, n, max(1, n // 4), n)
            _check(boxes, scores, cls, 0.3)


def test_negative_class_ids_match_opencv() -> None:
    # With coordinates >= 0, OpenCV keeps negative class ids apart as well.
    for seed in range(4):
        rng = np.random.default_rng(seed)
        boxes, scores, cls = clustered_boxes(rng, 1200 if seed % 2 else 90, 25, 6)
        _check(boxes, scores, cls - 3, 0.45)
        _check(boxes, scores, -1 - cls, 0.6)


@pytest.mark.parametrize("iou", [0.5, 0.6, 0.8, 0.95])
def test_high_thresholds_with_long_boxes_match_opencv(iou: float) -> None:
    # From t = 0.5 the search window is (1 - t) * w_a either side of a box's centre; long,
    # thin boxes sliding along x put many pairs near that bound.
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = 600
        x = rng.uniform(0, 400, n)
        w = rng.choice([20.0, 40.0, 160.0], n) * rng.uniform(0.98, 1.02, n)
        y = rng.integers(0, 4, n) * 3.0
        h = rng.choice([2.0, 30.0], n)
        boxes = np.stack([x, y, x + w, y + h], axis=1)
        _check(boxes, rng.random(n).astype(np.float32), rng.integers(0, 2, n), iou)


def test_window_pairs_take_each_window_without_its_upper_end() -> None:
    keys = np.array([0.0, 1.0, 2.0, 5.0])
    ids = np.array([10, 11, 12, 13])
    windows = np.array([[-1.0, 0.5], [3.0, 4.0], [1.0, 5.0], [0.0, 9.0]])
    src, dst = nms_module._window_pairs(keys, ids, windows, np.array([0, 1, 2, 3]))
    assert src.tolist() == [0, 2, 2, 3, 3, 3, 3]
    assert dst.tolist() == [10, 11, 12, 10, 11, 12, 13]


def test_many_equal_scores_keep_input_order() -> None:
    # OpenCV sorts with std::stable_sort: among equal scores the lower index comes first.
    for seed in range(6):
        rng = np.random.default_rng(seed)
        boxes, _, cls = clustered_boxes(rng, 3000 if seed % 2 else 1000, 40, 3)
        scores = rng.integers(0, 4, boxes.shape[0]).astype(np.float32) / 4  # 4 levels, many ties
        kept = _check(boxes, scores, cls, 0.45)
        assert np.all(np.diff(scores[kept]) <= 0)
    same = np.tile([[10.0, 10.0, 50.0, 50.0]], (5, 1))
    np.testing.assert_array_equal(batched_nms(same, np.full(5, 0.5), np.zeros(5, int), 0.5), [0])
    all_equal = clustered_boxes(np.random.default_rng(7), 2500, 30, 2)
    _check(all_equal[0], np.ones(2500, np.float32), all_equal[2], 0.45)


def test_float32_ties_are_judged_in_float32() -> None:
    # Two float64 scores that round to the same float32 tie, so the lower index wins.
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    scores = np.array([0.5, 0.5 + 1e-12])
    np.testing.assert_array_equal(batched_nms(boxes, scores, [0, 0], 0.5), [0])
    np.testing.assert_array_equal(opencv_nms(boxes, scores, [0, 0], 0.5), [0])


def test_iou_equal_to_threshold_is_kept() -> None:
    # IoU exactly 0.5: OpenCV keeps a box when overlap <= threshold.
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 10, 19]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    assert _check(boxes[:2], scores[:2], np.zeros(2, int), 0.5).tolist() == [0, 1]
    assert _check(boxes[:2], scores[:2], np.zeros(2, int), 0.49).tolist() == [0]
    # 10/19 > 0.5: suppressed. No "+1" in widths: a box from 0 to 10 is 10 wide.
    assert _check(boxes[[0, 2]], scores[[0, 2]], np.zeros(2, int), 0.5).tolist() == [0]


def test_integer_grid_boxes_with_exact_ratios() -> None:
    # Integer boxes produce IoUs that hit the thresholds exactly; only OpenCV's float32
    # rounding decides them.
    for seed in range(10):
        rng = np.random.default_rng(seed)
        xy = rng.integers(0, 20, (800, 2))
        wh = rng.integers(1, 8, (800, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(float)
        scores = rng.integers(0, 50, 800).astype(np.float32) / 50
        for iou in (0.5, 0.45, 1 / 3, 0.25, 0.6):
            _check(boxes, scores, rng.integers(0, 2, 800), iou)


def test_pairs_near_the_threshold_take_the_exact_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    exact = nms_module._exact_suppresses

    def counting(r: object, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        calls.append(a.size)
        return exact(r, a, b)

    monkeypatch.setattr(nms_module, "_exact_suppresses", counting)
    rng = np.random.default_rng(3)
    # Box pairs whose IoU is the threshold up to a few ulps: b is a shifted by just the
    # right amount, then nudged by float noise.
    iou = 0.45
    n = 200
    base = np.concatenate([rng.uniform(0, 500, (n, 2)), rng.uniform(10, 80, (n, 2))], axis=1)
    w = base[:, 2]
    shift = w * (1 - iou) / (1 + iou)  # IoU of a box with itself shifted by d along x
    shift *= 1 + rng.normal(0, 1e-7, n)
    a = np.stack([base[:, 0], base[:, 1], base[:, 0] + base[:, 2], base[:, 1] + base[:, 3]], axis=1)
    b = a + np.stack([shift, np.zeros(n), shift, np.zeros(n)], axis=1)
    boxes = np.concatenate([a, b])
    scores = np.concatenate([np.full(n, 0.9), np.full(n, 0.8)]).astype(np.float32)
    cls = np.concatenate([np.arange(n), np.arange(n)])  # one pair per class
    kept = _check(boxes, scores, cls, iou)
    assert n < kept.size < 2 * n  # some suppressed, some kept: the decisions are close
    assert sum(calls) > 0


def test_boxes_of_different_classes_never_suppress_each_other() -> None:
    # Negative coordinates: OpenCV's class shift (max_coord + 1 = 11) moves the class-1 box
    # onto the class-0 box and then suppresses across classes; batched_nms does not.
    boxes = np.array([[8.0, 8.0, 10.0, 10.0], [-3.0, -3.0, -1.0, -1.0]])
    scores = np.array([0.9, 0.8], dtype=np.float32)
    cls = np.array([0, 1])
    assert opencv_nms(boxes, scores, cls, 0.5).tolist() == [0]
    assert batched_nms(boxes, scores, cls, 0.5).tolist() == [0, 1]


def test_negative_coordinates_match_opencv_per_class() -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        boxes, scores, cls = clustered_boxes(rng, 1500, 30, 4)
        boxes -= 320.0  # half the boxes left of and above the origin
        got = batched_nms(boxes, scores, cls, 0.45)
        want = []
        for c in np.unique(cls):
            idx = np.flatnonzero(cls == c)
            want.extend(idx[opencv_nms(boxes[idx], scores[idx], np.zeros(idx.size, int), 0.45)])
        assert sorted(got.tolist()) == sorted(want)
        assert np.all(np.diff(scores[got]) <= 0)


def test_degenerate_boxes_follow_opencv() -> None:
    # Zero-area boxes: OpenCV counts two of them (areas summing to <= eps) as overlap 1,
    # wherever they are; within a class batched_nms does the same.
    rng = np.random.default_rng(5)
    boxes, scores, _ = clustered_boxes(rng, 400, 20, 2)
    boxes[::7, 2] = boxes[::7, 0]  # zero width
    boxes[::11, 3] = boxes[::11, 1] - 3  # negative height
    _check(boxes, scores, np.zeros(400, int), 0.45)
    points = np.array([[5.0, 5.0, 5.0, 5.0], [50.0, 50.0, 50.0, 50.0], [0.0, 0.0, 10.0, 10.0]])
    kept = _check(points, np.array([0.9, 0.8, 0.7], np.float32), np.zeros(3, int), 0.5)
    assert kept.tolist() == [0, 2]
    # Across classes OpenCV's rule suppresses too; batched_nms keeps classes apart.
    assert opencv_nms(points, [0.9, 0.8, 0.7], [0, 1, 2], 0.5).tolist() == [0, 2]
    assert batched_nms(points, [0.9, 0.8, 0.7], [0, 1, 2], 0.5).tolist() == [0, 1, 2]


def test_flat_boxes_from_clipping_match_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    # Boxes clipped to the frame can end with zero width or height. They are settled apart
    # from the others (no plain greedy loop), with the same result as OpenCV.
    def no_loop(r: object) -> np.ndarray:
        raise AssertionError("plain greedy loop used")

    monkeypatch.setattr(nms_module, "_greedy_exact", no_loop)
    for seed in range(12):
        rng = np.random.default_rng(seed)
        boxes, scores, cls = clustered_boxes(rng, 1500, 40, 1 if seed % 2 else 3)
        boxes = np.clip(boxes, 0, 640)
        flat = rng.random(1500) < 0.1
        boxes[flat, 2] = boxes[flat, 0]
        if seed % 3 == 0:
            scores = np.round(scores * 4) / 4
        iou = [0.45, 1.0, 0.0][seed % 3]
        if seed % 2:
            _check(boxes, scores, cls, iou)
        else:  # several classes: OpenCV lets flat boxes of different classes meet, so per class
            got = batched_nms(boxes, scores, cls, iou)
            want = []
            for c in np.unique(cls):
                idx = np.flatnonzero(cls == c)
                want.extend(idx[opencv_nms(boxes[idx], scores[idx], np.zeros(idx.size, int), iou)])
            assert sorted(got.tolist()) == sorted(want)


@pytest.mark.parametrize(("scale", "offset"), [(1 / 640, 0.0), (1.0, 1e6), (37.5, -5e4), (1e-6, 1e3)])
def test_other_coordinate_ranges_match_opencv(scale: float, offset: float) -> None:
    for seed in range(4):
        rng = np.random.default_rng(seed)
        boxes, scores, cls = clustered_boxes(rng, 1200, 25, 5)
        boxes = boxes * scale + offset
        if offset >= 0:
            _check(boxes, scores, cls, 0.45)
        else:
            _check(boxes, scores, np.zeros_like(cls), 0.45)


def test_thresholds_zero_and_one() -> None:
    rng = np.random.default_rng(11)
    boxes, scores, cls = clustered_boxes(rng, 1000, 30, 3)
    assert _check(boxes, scores, cls, 1.0).size == 1000
    kept = _check(boxes, scores, cls, 0.0)
    assert kept.size < 100


def test_class_iou_is_nms_per_class_with_its_threshold() -> None:
    rng = np.random.default_rng(2)
    xy = rng.integers(0, 300, (2000, 2))
    boxes = np.concatenate([xy, xy + rng.integers(10, 60, (2000, 2))], axis=1).astype(float)
    scores = rng.random(2000).astype(np.float32)
    cls = rng.integers(0, 4, 2000)
    table = {1: 0.2, 3: 0.8}
    got = batched_nms(boxes, scores, cls, 0.5, class_iou=table)
    want = []
    for c in range(4):
        idx = np.flatnonzero(cls == c)
        want.extend(idx[opencv_nms(boxes[idx], scores[idx], np.zeros(idx.size, int), table.get(c, 0.5))])
    assert sorted(got.tolist()) == sorted(want)
    assert np.all(np.diff(scores[got]) <= 0)


def test_nan_scores_are_dropped() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=float)
    scores = np.array([np.nan, 0.5, 0.4], dtype=np.float32)
    assert batched_nms(boxes, scores, [0, 0, 0], 0.5).tolist() == [1, 2]
    assert batched_nms(boxes[:1], scores[:1], [0], 0.5).size == 0


def test_empty_and_bad_inputs() -> None:
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).shape == (0,)
    box = np.array([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="class ids"):
        batched_nms(box, [0.5, 0.4], [0], 0.5)
    with pytest.raises(ValueError, match="finite"):
        batched_nms(np.array([[0.0, 0.0, np.inf, 1.0]]), [0.5], [0], 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        batched_nms(box, [0.5], [0], -0.1)
    with pytest.raises(ValueError, match=">= 0"):
        batched_nms(box, [0.5], [0], 0.5, class_iou={0: float("nan")})
    with pytest.raises(ValueError, match="integers"):
        batched_nms(box, [0.5], [0.5], 0.5)
    assert batched_nms(box, [0.5], np.array([2.0]), 0.5).tolist() == [0]


def test_opencv_binding_takes_the_rect2d_path() -> None:
    # The oracle must see fractional coordinates: IoU 10/10.4 = 0.96 keeps both boxes at
    # 0.97; the integer Rect overload would truncate them to IoU 1 and suppress one.
    boxes = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.4]]
    assert len(cv2.dnn.NMSBoxesBatched(boxes, [0.9, 0.8], [0, 0], 0.0, 0.97)) == 2


def test_documented_defaults_match_the_signature() -> None:
    assert docstring_defaults(batched_nms) == signature_defaults(batched_nms) == {"class_iou": None}
