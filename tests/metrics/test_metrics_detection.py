"""Detection metrics on small hand-worked cases, the result object and input validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecnn.metrics.detection import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    DetectionMetrics,
    GroundTruth,
    Predictions,
    evaluate_detections,
)


def gt_of(*boxes: tuple[float, float, float, float], classes=None, crowd=None) -> GroundTruth:
    classes = [0] * len(boxes) if classes is None else classes
    return GroundTruth(np.array(boxes, dtype=float).reshape(-1, 4), np.array(classes), crowd)


def preds_of(*rows: tuple[float, float, float, float, float], classes=None) -> Predictions:
    arr = np.array(rows, dtype=float).reshape(-1, 5)
    classes = [0] * len(arr) if classes is None else classes
    return Predictions(arr[:, :4], arr[:, 4], np.array(classes))


def test_documented_defaults() -> None:
    np.testing.assert_allclose(IOU_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    assert RECALL_THRESHOLDS.shape == (101,)
    np.testing.assert_allclose(RECALL_THRESHOLDS, np.arange(101) / 100)
    m = evaluate_detections({1: gt_of((0, 0, 10, 10))}, {}, num_classes=1)
    assert m.max_dets == 100
    assert m.names == ("0",)


def test_perfect_prediction_gives_ap_one() -> None:
    # "1.0" up to pycocotools' precision TP / (TP + FP + eps): 1 - 2e-16.
    m = evaluate_detections({1: gt_of((0, 0, 10, 10))}, {1: preds_of((0, 0, 10, 10, 0.9))}, 1)
    assert m.map50 == pytest.approx(1.0)
    assert m.map50_95 == pytest.approx(1.0)
    assert m.recall[:, 0].tolist() == [1.0] * 10


def test_false_positive_ranked_first_halves_ap() -> None:
    # Ranked: FP (precision 0, recall 0), then TP (precision 1/2, recall 1). The monotone
    # precision is 1/2 at every recall point, so AP = 0.5.
    gt = {1: gt_of((0, 0, 10, 10))}
    preds = {1: preds_of((50, 50, 60, 60, 0.9), (0, 0, 10, 10, 0.8))}
    m = evaluate_detections(gt, preds, 1)
    assert m.map50 == pytest.approx(0.5)
    recall, precision = m.pr_curve(0)
    np.testing.assert_allclose(recall, RECALL_THRESHOLDS)
    np.testing.assert_allclose(precision, 0.5, atol=1e-12)


def test_iou_exactly_at_threshold_matches() -> None:
    # IoU = 50 / 100 = 0.5: a match at 0.50 (IoU >= t), not at 0.55 and above.
    m = evaluate_detections({1: gt_of((0, 0, 10, 10))}, {1: preds_of((0, 0, 10, 5, 0.9))}, 1)
    assert m.ap[:, 0].tolist() == pytest.approx([1.0] + [0.0] * 9)
    assert m.map50 == pytest.approx(1.0)
    assert m.map50_95 == pytest.approx(0.1)


def test_missed_object_caps_recall() -> None:
    gt = {1: gt_of((0, 0, 10, 10), (20, 20, 30, 30))}
    m = evaluate_detections(gt, {1: preds_of((0, 0, 10, 10, 0.9))}, 1)
    # Recall 1/2 at precision 1: 51 of the 101 recall points (0.00 .. 0.50) reached.
    assert m.map50 == pytest.approx(51 / 101)
    assert m.recall[0, 0] == 0.5


def test_duplicate_prediction_is_a_false_positive() -> None:
    gt = {1: gt_of((0, 0, 10, 10))}
    m = evaluate_detections(gt, {1: preds_of((0, 0, 10, 10, 0.9), (0, 0, 10, 10, 0.8))}, 1)
    assert m.map50 == pytest.approx(1.0)  # the duplicate ranks after the match: recall is already 1
    assert m.class_precision[0] == 1.0  # the best-F1 threshold drops it
    assert m.score_threshold == 0.9


def test_prediction_in_crowd_region_is_ignored() -> None:
    gt = {1: gt_of((0, 0, 10, 10), (40, 40, 100, 100), crowd=[False, True])}
    # The highest-scored prediction lies inside the crowd box: neither TP nor FP.
    preds = {1: preds_of((50, 50, 60, 60, 0.9), (0, 0, 10, 10, 0.8))}
    m = evaluate_detections(gt, preds, 1)
    assert m.map50 == pytest.approx(1.0)
    assert m.num_gt.tolist() == [1]
    # Without the crowd flag the same prediction is a false positive.
    plain = {1: gt_of((0, 0, 10, 10), (40, 40, 100, 100))}
    assert evaluate_detections(plain, preds, 1).map50 < 1.0


def test_classes_without_ground_truth_are_left_out_of_the_mean() -> None:
    gt = {1: gt_of((0, 0, 10, 10), classes=[0])}
    preds = {1: preds_of((0, 0, 10, 10, 0.9), (0, 0, 10, 10, 0.9), classes=[0, 1])}
    m = evaluate_detections(gt, preds, num_classes=3, names=["cat", "dog", "cow"])
    assert m.map50 == pytest.approx(1.0)
    assert m.ap50[0] == pytest.approx(1.0)
    assert np.isnan(m.ap50[1]) and np.isnan(m.ap50[2])
    d = m.to_dict()
    assert d["per_class"]["dog"] == {
        "ap50": None,
        "ap50_95": None,
        "precision": None,
        "recall": None,
        "num_gt": 0,
    }
    assert d["per_class"]["cat"]["ap50"] == pytest.approx(1.0)


def test_class_with_ground_truth_but_no_predictions_scores_zero() -> None:
    gt = {1: gt_of((0, 0, 10, 10), (20, 20, 30, 30), classes=[0, 1])}
    m = evaluate_detections(gt, {1: preds_of((0, 0, 10, 10, 0.9), classes=[0])}, 2)
    assert m.ap50.tolist() == pytest.approx([1.0, 0.0])
    assert m.map50 == pytest.approx(0.5)
    assert m.class_recall.tolist() == [1.0, 0.0]


def test_no_predictions_at_all() -> None:
    m = evaluate_detections({1: gt_of((0, 0, 10, 10)), 2: GroundTruth.empty()}, {}, 1)
    assert m.map50 == 0.0 and m.map50_95 == 0.0
    assert m.score_threshold is None
    assert m.to_dict()["precision"] == 0.0


def test_no_ground_truth_at_all() -> None:
    m = evaluate_detections({1: GroundTruth.empty()}, {1: preds_of((0, 0, 10, 10, 0.9))}, 1)
    assert m.map50 is None and m.map50_95 is None and m.mar is None
    assert m.to_dict()["map50"] is None
    assert m.num_images == 1


def test_max_dets_keeps_the_highest_scores_per_image() -> None:
    # Three false positives outscore the true positive; with max_dets=3 it is cut.
    gt = {1: gt_of((0, 0, 10, 10))}
    rows = [(50 + i, 50, 60 + i, 60, 0.9) for i in range(3)] + [(0, 0, 10, 10, 0.1)]
    preds = {1: preds_of(*rows)}
    assert evaluate_detections(gt, preds, 1, max_dets=4).map50 == pytest.approx(0.25)
    assert evaluate_detections(gt, preds, 1, max_dets=3).map50 == 0.0


def test_equal_iou_picks_the_later_ground_truth_box() -> None:
    # The first prediction overlaps both boxes with IoU 90/110; COCO gives it the later box.
    # The second overlaps only the first box (IoU 70/130 = 0.54), which is therefore still
    # free: recall 1 at IoU 0.5. Taking the first box on ties would leave recall at 1/2.
    gt = {1: gt_of((0, 0, 10, 10), (2, 0, 12, 10))}
    preds = {1: preds_of((1, 0, 11, 10, 0.9), (-3, 0, 7, 10, 0.8))}
    m = evaluate_detections(gt, preds, 1)
    assert m.recall[0, 0] == 1.0
    assert m.recall[1, 0] == 0.5


def test_best_f1_operating_point_by_hand() -> None:
    # Scores 0.9 TP, 0.8 FP, 0.7 TP over 2 objects: F1 is 2/3, 1/2, 4/5 at the three
    # thresholds, so the best threshold is 0.7 (precision 2/3, recall 1).
    gt = {1: gt_of((0, 0, 10, 10), (20, 20, 30, 30))}
    preds = {1: preds_of((0, 0, 10, 10, 0.9), (50, 50, 60, 60, 0.8), (20, 20, 30, 30, 0.7))}
    m = evaluate_detections(gt, preds, 1)
    assert m.score_threshold == 0.7
    assert m.class_precision[0] == pytest.approx(2 / 3)
    assert m.class_recall[0] == 1.0
    assert m.mean_f1 == pytest.approx(0.8)


def test_best_f1_prefers_the_higher_threshold_on_ties() -> None:
    # Two objects; ranked TP, FP, FP, TP. F1 = 2 TP / (n + G): 2/3 at 0.9 and 4/6 at 0.6,
    # an exact tie (2/5 and 1/2 in between); the higher threshold wins.
    gt = {1: gt_of((0, 0, 10, 10), (20, 20, 30, 30))}
    preds = {
        1: preds_of(
            (0, 0, 10, 10, 0.9),
            (50, 50, 60, 60, 0.8),
            (60, 60, 70, 70, 0.7),
            (20, 20, 30, 30, 0.6),
        )
    }
    m = evaluate_detections(gt, preds, 1)
    assert m.score_threshold == 0.9
    assert m.mean_f1 == pytest.approx(2 / 3)


def test_best_f1_tie_survives_rounding() -> None:
    # Three classes whose macro F1 is exactly 7/4 / 3 at thresholds 0.375 and 0.125; summed
    # in floating point the lower one comes out ahead. The higher one must win.
    spec = {  # class: (number of objects, [(score, is a true positive), ...])
        0: (3, [(0.75, False), (0.625, False), (0.625, True)]),
        1: (3, [(0.875, True), (0.75, True), (0.625, False), (0.5, False), (0.375, True), (0.125, False)]),
        2: (4, [(0.75, True), (0.75, True), (0.25, False), (0.125, True)]),
    }
    g_boxes, g_cls, rows, p_cls = [], [], [], []
    for k, (num_objects, ranked) in spec.items():
        objects = [(100 * j, 100 * k, 100 * j + 10, 100 * k + 10) for j in range(num_objects)]
        g_boxes += objects
        g_cls += [k] * num_objects
        hits = iter(objects)
        for n, (score, tp) in enumerate(ranked):
            box = next(hits) if tp else (1000 + 20 * n, 1000 + 20 * k, 1010 + 20 * n, 1010 + 20 * k)
            rows.append((*box, score))
            p_cls.append(k)
    m = evaluate_detections({1: gt_of(*g_boxes, classes=g_cls)}, {1: preds_of(*rows, classes=p_cls)}, 3)
    assert m.score_threshold == 0.375
    assert m.mean_f1 == pytest.approx(7 / 12)


def test_pr_curve_rejects_unknown_iou() -> None:
    m = evaluate_detections({1: gt_of((0, 0, 10, 10))}, {1: preds_of((0, 0, 10, 10, 0.9))}, 1)
    recall, precision = m.pr_curve(0, iou=0.75)
    assert recall.shape == precision.shape == (101,)
    with pytest.raises(ValueError, match="iou must be one of"):
        m.pr_curve(0, iou=0.52)


def test_to_dict_is_json_ready() -> None:
    gt = {1: gt_of((0, 0, 10, 10), (5, 5, 20, 20), classes=[0, 1])}
    preds = {1: preds_of((0, 0, 10, 10, 0.9), (6, 6, 20, 20, 0.4), classes=[0, 1])}
    m = evaluate_detections(gt, preds, 3, names=["a", "b", "c"])
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert set(d) == {
        "map50",
        "map50_95",
        "map75",
        "mar",
        "precision",
        "recall",
        "f1",
        "score_threshold",
        "num_images",
        "max_dets",
        "per_class",
    }
    assert list(d["per_class"]) == ["a", "b", "c"]
    assert d["per_class"]["b"]["num_gt"] == 1
    assert d["map50"] == pytest.approx(m.map50)
    assert isinstance(m, DetectionMetrics)


def test_float32_boxes_are_accepted() -> None:
    box = np.array([[0, 0, 10, 10]], dtype=np.float32)
    m = evaluate_detections(
        {1: GroundTruth(box, np.array([0]))},
        {1: Predictions(box, np.array([0.5], dtype=np.float32), np.array([0], dtype=np.int32))},
        1,
    )
    assert m.map50 == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GroundTruth(np.array([[10, 0, 0, 10]]), np.array([0])), "not xyxy"),
        (lambda: GroundTruth(np.array([[0, 0, 10]]), np.array([0])), "shape"),
        (lambda: GroundTruth(np.array([[0, 0, 10, 10]]), np.array([0, 1])), "class_ids must have shape"),
        (lambda: GroundTruth(np.array([[0, 0, 10, 10]]), np.array([0.5])), "integers"),
        (lambda: Predictions(np.array([[0, 0, 10, 10]]), np.array([np.nan]), np.array([0])), "NaN"),
        (lambda: Predictions(np.array([[0, 0, np.inf, 10]]), np.array([0.5]), np.array([0])), "NaN"),
    ],
)
def test_malformed_arrays_are_rejected(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_arguments_are_rejected() -> None:
    gt = {1: gt_of((0, 0, 10, 10))}
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_detections(gt, {2: preds_of((0, 0, 10, 10, 0.9))}, 1)
    with pytest.raises(ValueError, match=r"class id 3 not in 0\.\.1"):
        evaluate_detections(gt, {1: preds_of((0, 0, 10, 10, 0.9), classes=[3])}, 2)
    with pytest.raises(ValueError, match="ground truth of image 1: class id 1"):
        evaluate_detections({1: gt_of((0, 0, 10, 10), classes=[1])}, {}, 1)
    with pytest.raises(ValueError, match="2 names for 1 classes"):
        evaluate_detections(gt, {}, 1, names=["a", "b"])
    with pytest.raises(ValueError, match="max_dets"):
        evaluate_detections(gt, {}, 1, max_dets=0)
