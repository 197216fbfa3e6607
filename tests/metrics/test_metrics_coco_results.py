"""Reading COCO results lists (``[{image_id, category_id, bbox, score}, ...]``) into Predictions."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edgecnn.metrics.detection import GroundTruth, evaluate_detections, predictions_from_coco_results

RESULTS = [
    {"image_id": 4, "category_id": 7, "bbox": [10, 20, 30, 40], "score": 0.9},
    {"image_id": 2, "category_id": 1, "bbox": [0.5, 0.5, 2.0, 3.0], "score": 0.25, "extra": "ignored"},
    {"image_id": 4, "category_id": 1, "bbox": [0, 0, 0, 5], "score": 0.9},
]
CATEGORIES = {1: 0, 7: 1}


def test_groups_by_image_and_converts_to_xyxy() -> None:
    preds = predictions_from_coco_results(RESULTS, CATEGORIES)
    assert sorted(preds) == [2, 4]
    np.testing.assert_array_equal(preds[4].boxes, [[10, 20, 40, 60], [0, 0, 0, 5]])
    np.testing.assert_array_equal(preds[4].scores, [0.9, 0.9])  # input order kept
    np.testing.assert_array_equal(preds[4].class_ids, [1, 0])
    np.testing.assert_array_equal(preds[2].boxes, [[0.5, 0.5, 2.5, 3.5]])
    assert predictions_from_coco_results([], CATEGORIES) == {}


def test_results_file_evaluates_like_pycocotools(coco_oracle) -> None:
    # Sparse category ids (1, 3, 5), equal scores, an image without results.
    rng = np.random.default_rng(5)
    num_classes = 3
    gt = {}
    for image_id in range(1, 16):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, (n, 2))
        gt[image_id] = GroundTruth(
            np.c_[xy, xy + rng.uniform(5, 60, (n, 2))], rng.integers(0, num_classes, n)
        )
    cats = coco_oracle.categories(num_classes)
    results = []
    for image_id, g in gt.items():
        if image_id == 3:
            continue
        for (x1, y1, x2, y2), cls in zip(g.boxes, g.class_ids, strict=True):
            for _ in range(int(rng.integers(1, 4))):
                j = rng.normal(0, 4, 4)
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": cats[int(rng.integers(0, num_classes)) if rng.random() < 0.2 else cls],
                        "bbox": [x1 + j[0], y1 + j[1], max(x2 - x1 + j[2], 1.0), max(y2 - y1 + j[3], 1.0)],
                        "score": round(float(rng.random()), 1),
                    }
                )
    rng.shuffle(results)
    preds = predictions_from_coco_results(results, {c: k for k, c in enumerate(cats)})
    assert 3 not in preds
    metrics = evaluate_detections(gt, preds, num_classes)
    ev = coco_oracle.evaluate(gt, copy.deepcopy(results), num_classes)
    ref = coco_oracle.arrays(ev)
    assert np.abs(metrics.precision - ref["precision"]).max() <= 1e-4
    assert metrics.map50_95 == pytest.approx(ev.stats[0], abs=1e-4)
    assert metrics.map50 == pytest.approx(ev.stats[1], abs=1e-4)


def _with(index: int, **changes) -> list[dict]:
    results = copy.deepcopy(RESULTS)
    for key, value in changes.items():
        if value is KeyError:
            del results[index][key]
        else:
            results[index][key] = value
    return results


@pytest.mark.parametrize(
    ("results", "message"),
    [
        (_with(1, score=KeyError), "result 1: missing key 'score'"),
        (_with(0, bbox=KeyError), "result 0: missing key 'bbox'"),
        (_with(2, bbox=[0, 0, -1, 5]), r"result 2: negative width -1"),
        (_with(2, bbox=[0, 0, 1, -5]), r"result 2: negative height -5"),
        (_with(1, category_id=3), r"result 1: unknown category_id 3 \(known: 1, 7\)"),
        (_with(1, category_id="1"), "result 1: unknown category_id '1'"),
        (_with(0, bbox=[0, 0, 5]), r"result 0: bbox must be four finite numbers"),
        (_with(0, bbox=[0, 0, float("nan"), 5]), r"result 0: bbox must be four finite numbers"),
        (_with(0, bbox="0,0,5,5"), r"result 0: bbox must be four finite numbers"),
        (_with(2, score="high"), "result 2: score must be a finite number"),
        (_with(2, image_id="a.jpg"), "result 2: image_id must be an integer"),
        ([*RESULTS, [1, 2, 3]], "result 3: expected an object, got list"),
    ],
)
def test_malformed_entries_name_their_index(results: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        predictions_from_coco_results(results, CATEGORIES)
