"""COCO box AP from edgecnn.metrics.detection against pycocotools' COCOeval on random sets.

Each random set mixes what breaks naive implementations: images without ground truth,
images without predictions, a class with ground truth but no predictions, a class with
predictions but no ground truth, duplicate boxes, crowd boxes, equal scores, and images
with more than ``max_dets`` predictions of one class.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.metrics import detection
from edgecnn.metrics.detection import GroundTruth, Predictions, evaluate_detections

NUM_CLASSES = 5
GT_ONLY_CLASS = 3  # has ground truth, never predicted
PRED_ONLY_CLASS = 4  # predicted, never in the ground truth
TOL = 1e-4


def _random_boxes(rng: np.random.Generator, n: int, grid: bool) -> np.ndarray:
    if grid:  # integer corners: exact IoU ties, including IoU exactly 0.5
        xy = rng.integers(0, 80, (n, 2)).astype(float)
        wh = rng.integers(1, 40, (n, 2)).astype(float)
    else:
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(2, 120, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def random_dataset(
    seed: int, num_images: int = 40, grid: bool = True
) -> tuple[dict[int, GroundTruth], dict[int, Predictions]]:
    """Random ground truth and predictions with every awkward case (see module docstring)."""
    rng = np.random.default_rng(seed)
    gt: dict[int, GroundTruth] = {}
    preds: dict[int, Predictions] = {}
    gt_classes = [k for k in range(NUM_CLASSES) if k != PRED_ONLY_CLASS]
    pred_classes = np.array([k for k in range(NUM_CLASSES) if k != GT_ONLY_CLASS])
    # Image ids are not contiguous and not inserted in order.
    image_ids = rng.permutation(np.arange(num_images) * 3 + 7)
    for n, image_id in enumerate(image_ids):
        num_gt = 0 if n % 7 == 0 else int(rng.integers(1, 9))
        g_boxes = _random_boxes(rng, num_gt, grid)
        if num_gt > 2:  # duplicate ground-truth box
            g_boxes[-1] = g_boxes[0]
        g_cls = rng.choice(gt_classes, num_gt)
        crowd = rng.random(num_gt) < 0.12
        gt[int(image_id)] = GroundTruth(g_boxes, g_cls, crowd)
        if n % 5 == 1:
            continue  # image without predictions
        heavy = n % 9 == 4
        num_p = int(rng.integers(110, 220)) if heavy else int(rng.integers(0, 16))
        # Most predictions sit near a ground-truth box (jittered), the rest anywhere.
        p_boxes = _random_boxes(rng, num_p, grid)
        if num_gt:
            near = rng.random(num_p) < 0.7
            src = rng.integers(0, num_gt, num_p)
            jitter = rng.integers(-4, 5, (num_p, 4)) if grid else rng.normal(0, 6, (num_p, 4))
            p_boxes[near] = g_boxes[src[near]] + jitter[near]
            p_boxes[:, 2:] = np.maximum(p_boxes[:, 2:], p_boxes[:, :2] + 1)
        if num_p > 3:  # duplicate predictions
            p_boxes[1] = p_boxes[0]
        if heavy:
            p_cls = np.full(num_p, rng.choice(pred_classes))
        elif num_gt:
            p_cls = np.where(rng.random(num_p) < 0.8, g_cls[rng.integers(0, num_gt, num_p)], 0)
            p_cls = np.where(p_cls == GT_ONLY_CLASS, PRED_ONLY_CLASS, p_cls)
            p_cls[rng.random(num_p) < 0.1] = PRED_ONLY_CLASS
        else:
            p_cls = rng.choice(pred_classes, num_p)
        # Coarse score levels give many equal scores, within and across images.
        scores = rng.integers(0, 8, num_p) / 8 if seed % 2 == 0 else rng.random(num_p)
        preds[int(image_id)] = Predictions(p_boxes, scores, p_cls)
    return gt, preds


def assert_matches_coco(metrics, coco_oracle, ev, max_dets: int = 100) -> float:
    """Compare every array and summary; return the largest absolute difference."""
    ref = coco_oracle.arrays(ev, max_dets)
    diffs = [np.abs(getattr(metrics, key) - ref[key]).max() for key in ("precision", "recall", "scores")]
    p = ref["precision"]
    assert metrics.map50 == pytest.approx(np.mean(p[0][p[0] > -1]), abs=TOL)
    assert metrics.map50_95 == pytest.approx(np.mean(p[p > -1]), abs=TOL)
    for k in range(NUM_CLASSES):
        if (p[:, :, k] > -1).any():
            assert metrics.ap50[k] == pytest.approx(p[0, :, k].mean(), abs=TOL)
            assert metrics.ap50_95[k] == pytest.approx(p[:, :, k].mean(), abs=TOL)
        else:
            assert np.isnan(metrics.ap50[k]) and np.isnan(metrics.ap50_95[k])
    worst = float(max(diffs))
    assert worst <= TOL
    return worst


def test_random_dataset_covers_the_awkward_cases() -> None:
    gt, preds = random_dataset(seed=0)
    assert any(len(g.boxes) == 0 for g in gt.values())
    assert any(i not in preds for i in gt)
    assert any(g.iscrowd.any() for g in gt.values())
    assert max(np.bincount(p.class_ids).max(initial=0) for p in preds.values()) > 100
    all_scores = np.concatenate([p.scores for p in preds.values()])
    assert np.unique(all_scores).size < all_scores.size
    assert GT_ONLY_CLASS not in np.concatenate([p.class_ids for p in preds.values()])
    assert PRED_ONLY_CLASS not in np.concatenate([g.class_ids for g in gt.values()])


@pytest.mark.parametrize("grid", [True, False], ids=["integer-boxes", "float-boxes"])
@pytest.mark.parametrize("seed", range(20))
def test_equals_pycocotools(seed: int, grid: bool, coco_oracle) -> None:
    gt, preds = random_dataset(seed, grid=grid)
    ev = coco_oracle.evaluate(gt, preds, NUM_CLASSES)
    metrics = evaluate_detections(gt, preds, NUM_CLASSES)
    assert_matches_coco(metrics, coco_oracle, ev)
    # pycocotools' own summary: stats[0] AP50:95, [1] AP50, [2] AP75, [8] AR@100.
    assert metrics.map50_95 == pytest.approx(ev.stats[0], abs=TOL)
    assert metrics.map50 == pytest.approx(ev.stats[1], abs=TOL)
    assert metrics.map75 == pytest.approx(ev.stats[2], abs=TOL)
    assert metrics.mar == pytest.approx(ev.stats[8], abs=TOL)
    # Classes without ground truth are excluded from the means, as pycocotools' -1.
    assert np.isnan(metrics.ap50[PRED_ONLY_CLASS])
    assert metrics.ap50[GT_ONLY_CLASS] == 0.0
    assert (metrics.precision[:, :, PRED_ONLY_CLASS] == -1).all()


def test_larger_set_equals_pycocotools(coco_oracle) -> None:
    gt, preds = random_dataset(seed=999, num_images=400, grid=False)
    ev = coco_oracle.evaluate(gt, preds, NUM_CLASSES)
    metrics = evaluate_detections(gt, preds, NUM_CLASSES)
    assert_matches_coco(metrics, coco_oracle, ev)
    assert metrics.map50_95 == pytest.approx(ev.stats[0], abs=TOL)


@pytest.mark.parametrize("max_dets", [1, 5, 20])
@pytest.mark.parametrize("seed", [100, 101])
def test_max_dets_cut_equals_pycocotools(seed: int, max_dets: int, coco_oracle) -> None:
    gt, preds = random_dataset(seed)
    ev = coco_oracle.evaluate(gt, preds, NUM_CLASSES, max_dets=max_dets)
    metrics = evaluate_detections(gt, preds, NUM_CLASSES, max_dets=max_dets)
    assert metrics.max_dets == max_dets
    assert_matches_coco(metrics, coco_oracle, ev, max_dets)


def test_all_scores_equal_keep_input_and_image_order(coco_oracle) -> None:
    gt, preds = random_dataset(seed=7)
    preds = {i: Predictions(p.boxes, np.full(len(p.scores), 0.5), p.class_ids) for i, p in preds.items()}
    ev = coco_oracle.evaluate(gt, preds, NUM_CLASSES)
    assert_matches_coco(evaluate_detections(gt, preds, NUM_CLASSES), coco_oracle, ev)
    # Reversing the input order changes which tied prediction is matched first: the result
    # must follow, as pycocotools' stable sort does.
    flipped = {i: Predictions(p.boxes[::-1], p.scores, p.class_ids[::-1]) for i, p in preds.items()}
    ev = coco_oracle.evaluate(gt, flipped, NUM_CLASSES)
    assert_matches_coco(evaluate_detections(gt, flipped, NUM_CLASSES), coco_oracle, ev)


def test_matching_in_small_chunks_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    gt, preds = random_dataset(seed=3)
    whole = evaluate_detections(gt, preds, NUM_CLASSES)
    monkeypatch.setattr(detection, "_MATCH_BUDGET", 64)
    chunked = evaluate_detections(gt, preds, NUM_CLASSES)
    np.testing.assert_array_equal(whole.precision, chunked.precision)
    np.testing.assert_array_equal(whole.recall, chunked.recall)


def _brute_force_best_f1(ev, num_classes: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Best macro-F1 threshold at IoU 0.5 from pycocotools' per-image matches, one threshold at a time."""
    k_count = len(ev.params.catIds)
    area_count = len(ev.params.areaRng)
    img_count = len(ev.params.imgIds)
    per_class = []
    for k in range(num_classes):
        scores, tp, counted, num_gt = [], [], [], 0
        for e in ev.evalImgs[k * area_count * img_count : k * area_count * img_count + img_count]:
            if e is None:
                continue
            scores += list(e["dtScores"])
            tp += list(e["dtMatches"][0] > 0)
            counted += list(~e["dtIgnore"][0].astype(bool))
            num_gt += int((e["gtIgnore"] == 0).sum())
        mask = np.array(counted, dtype=bool)
        per_class.append((np.array(scores)[mask], np.array(tp, dtype=bool)[mask], num_gt))
    assert len(per_class) == k_count
    with_gt = [c for c in per_class if c[2] > 0]
    candidates = sorted({float(x) for s, _, _ in with_gt for x in s}, reverse=True)
    best = (-1.0, None)
    for thr in candidates:
        f1s = []
        for s, tp, g in with_gt:
            kept = s >= thr
            n, t = kept.sum(), (tp & kept).sum()
            f1s.append(2 * t / (n + g))
        if np.mean(f1s) > best[0] + 1e-12:
            best = (float(np.mean(f1s)), thr)
    thr = best[1]
    precision = np.full(num_classes, np.nan)
    recall = np.full(num_classes, np.nan)
    for k, (s, tp, g) in enumerate(per_class):
        if g:
            kept = s >= thr
            precision[k] = (tp & kept).sum() / kept.sum() if kept.any() else 0.0
            recall[k] = (tp & kept).sum() / g
    return thr, precision, recall


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_best_f1_operating_point_equals_brute_force(seed: int, coco_oracle) -> None:
    gt, preds = random_dataset(seed, num_images=25)
    ev = coco_oracle.evaluate(gt, preds, NUM_CLASSES)
    thr, precision, recall = _brute_force_best_f1(ev, NUM_CLASSES)
    metrics = evaluate_detections(gt, preds, NUM_CLASSES)
    assert metrics.score_threshold == thr
    np.testing.assert_allclose(metrics.class_precision, precision, atol=1e-12)
    np.testing.assert_allclose(metrics.class_recall, recall, atol=1e-12)
    has_gt = ~np.isnan(precision)
    assert metrics.mean_precision == pytest.approx(precision[has_gt].mean())
    assert metrics.mean_recall == pytest.approx(recall[has_gt].mean())
