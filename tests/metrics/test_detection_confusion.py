"""The detection confusion matrix: matched, confused, missed and false detections, by hand."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecnn.evaluation.plots import write_plots
from edgecnn.metrics import GroundTruth, Predictions, evaluate_detections
from edgecnn.metrics.detection_confusion import detection_confusion_matrix

CAT, DOG, BG = 0, 1, 2


def test_hand_counted_example() -> None:
    gt = {
        1: GroundTruth([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], [CAT, DOG, DOG]),
        2: GroundTruth([[0, 0, 10, 10], [100, 100, 200, 200]], [CAT, CAT], iscrowd=[False, True]),
        3: GroundTruth.empty(),
    }
    preds = {
        1: Predictions(
            [
                [0, 0, 10, 10],  # the cat, found as a cat
                [20, 20, 30, 31],  # the first dog, found as a cat (IoU 10/11)
                [21, 21, 30, 30],  # a second box on that dog: unmatched, a false dog
                [50, 50, 60, 60],  # the second dog, but below the threshold: not counted
            ],
            [0.9, 0.8, 0.7, 0.2],
            [CAT, CAT, DOG, DOG],
        ),
        2: Predictions(
            [[120, 120, 140, 140], [300, 300, 310, 310]],  # on the crowd region (ignored); nowhere
            [0.9, 0.9],
            [CAT, DOG],
        ),
        3: Predictions([[5, 5, 9, 9]], [0.6], [DOG]),
    }
    m = detection_confusion_matrix(gt, preds, 2, score_threshold=0.5)
    want = np.zeros((3, 3), np.int64)
    want[CAT, CAT] = 1  # image 1's cat
    want[DOG, CAT] = 1  # image 1's first dog, called a cat
    want[DOG, BG] = 1  # image 1's second dog: its prediction scored under the threshold
    want[CAT, BG] = 1  # image 2's cat: missed (the crowd region is not an object to find)
    want[BG, DOG] = 3  # the second box on image 1's dog, image 2's box in nowhere, image 3's box
    np.testing.assert_array_equal(m, want)
    # without an operating point every object is missed and nothing is detected
    none = detection_confusion_matrix(gt, preds, 2, score_threshold=None)
    np.testing.assert_array_equal(none, [[0, 0, 2], [0, 0, 2], [0, 0, 0]])


def test_each_object_and_prediction_is_matched_once_best_iou_first() -> None:
    # Two cats side by side and two predictions: the dog-labelled box overlaps cat 0 best,
    # the cat-labelled box overlaps both; one-to-one by IoU gives the dog box to cat 0.
    gt = {1: GroundTruth([[0, 0, 10, 10], [4, 0, 14, 10]], [CAT, CAT])}
    preds = {1: Predictions([[0, 0, 10, 10], [2, 0, 12, 10]], [0.5, 0.9], [DOG, CAT])}
    m = detection_confusion_matrix(gt, preds, 2, score_threshold=0.1)
    # IoU: dog box / cat 0 = 1.0, cat box / cat 0 = 8/12, cat box / cat 1 = 8/12
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 0, 0], [0, 0, 0]])


def test_evaluate_detections_carries_it_at_the_best_f1_point_and_plots_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gt, preds = {}, {}
    for image_id in range(20):
        xy = rng.uniform(0, 200, (3, 2))
        boxes = np.concatenate([xy, xy + 30], axis=1)
        classes = rng.integers(0, 3, 3)
        gt[image_id] = GroundTruth(boxes, classes)
        noisy = boxes + rng.normal(0, 2, boxes.shape)
        called = np.where(rng.random(3) < 0.2, (classes + 1) % 3, classes)
        preds[image_id] = Predictions(noisy, rng.uniform(0.3, 1.0, 3), called)
    metrics = evaluate_detections(gt, preds, 3, ["a", "b", "c"])
    assert metrics.confusion is not None and metrics.score_threshold is not None
    np.testing.assert_array_equal(
        metrics.confusion, detection_confusion_matrix(gt, preds, 3, metrics.score_threshold)
    )
    assert metrics.confusion[:3].sum() == 60  # every object counted once: found, confused or missed
    written = write_plots(metrics, tmp_path)
    assert [p.name for p in written] == ["pr_curve.png", "confusion_matrix.png"]
    image = cv2.imread(str(written[1]))
    assert image is not None and min(image.shape[:2]) >= 400
