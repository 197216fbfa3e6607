"""Score a predictions file against a dataset split (``edgecnn eval --predictions``).

Detection: a COCO results file, a JSON list of ``{image_id, category_id, bbox: [x, y, w, h],
score}``; image ids and category ids are those of the split (see docs/datasets.md: COCO
sources keep their ids, other formats number images 1.. in sorted path order and use the
class index as category id). Classification: a JSON list of ``{image_id, category_id}``
(``score`` optional; the highest-scoring entry of an image is its prediction).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.data import Split, load_split
from edgecnn.errors import DataError
from edgecnn.inputs import read_text_input
from edgecnn.metrics.detection import GroundTruth, evaluate_detections, predictions_from_coco_results


def _read_results(path: Path) -> list[Any]:
    text = read_text_input(path, "--predictions")  # never a pipe, a device or a huge file
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON: {exc.msg}", f"line {exc.lineno}") from None
    except (RecursionError, ValueError):  # nested too deeply, or an over-long integer
        raise DataError(path, "malformed JSON: nested too deeply or a number too long") from None
    if not isinstance(doc, list):
        raise DataError(path, f"expected a JSON list of results, got {type(doc).__name__}")
    return doc


def score_predictions_file(
    predictions: str | Path,
    data_yaml: str | Path,
    split: str = "val",
    *,
    skip_bad: bool = False,
    max_dets: int = 100,
) -> dict[str, Any]:
    """Score a predictions JSON file against a split's ground truth.

    Args:
        predictions: the predictions file (see the module docstring for the formats).
        data_yaml: the dataset's data.yaml.
        split: which split holds the ground truth.
        skip_bad: skip bad ground-truth entries instead of failing (see :func:`load_split`).
        max_dets: detections kept per image and class (COCO: 100).

    Returns:
        For detection the keys of :meth:`DetectionMetrics.to_dict` (``map50``, ``map50_95``,
        ``per_class``, ...); for classification those of
        :meth:`ClassificationMetrics.to_dict` (``accuracy``, ``precision``, ``recall``,
        ``f1``, ``per_class``, ...). Both add ``task``, ``split`` and ``num_predictions``.

    Raises:
        DataError: unreadable or malformed predictions (naming the entry), or predictions for
            image ids that the split does not have.
    """
    path = Path(predictions)
    results = _read_results(path)
    gt_split = load_split(data_yaml, split, skip_bad=skip_bad)
    known = {r.image_id for r in gt_split.records}
    category_to_class = {int(c): k for k, c in enumerate(gt_split.category_ids)}
    if gt_split.task == "detect":
        report = _score_detections(path, results, gt_split, known, category_to_class, max_dets)
    else:
        report = _score_classification(path, results, gt_split, known, category_to_class)
    report.update({"task": gt_split.task, "split": split, "num_predictions": len(results)})
    return report


def _check_ids(path: Path, image_ids: Mapping[int, Any], known: set[int], split: Split) -> None:
    unknown = sorted(set(image_ids) - known)
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataError(path, f"image_id {shown}{more} not in the {split.name} split ({len(known)} images)")


def _score_detections(
    path: Path,
    results: list[Any],
    split: Split,
    known: set[int],
    category_to_class: dict[int, int],
    max_dets: int,
) -> dict[str, Any]:
    try:
        preds = predictions_from_coco_results(results, category_to_class)
    except ValueError as exc:
        raise DataError(path, str(exc)) from None
    _check_ids(path, preds, known, split)
    gt = {r.image_id: GroundTruth(r.boxes, r.class_ids, r.ignore) for r in split.records}
    metrics = evaluate_detections(gt, preds, len(split.names), split.names, max_dets=max_dets)
    return metrics.to_dict()


def _score_classification(
    path: Path,
    results: list[Any],
    split: Split,
    known: set[int],
    category_to_class: dict[int, int],
) -> dict[str, Any]:
    from edgecnn.metrics.classification import classification_metrics

    best: dict[int, tuple[float, int]] = {}
    for i, entry in enumerate(results):
        if not isinstance(entry, Mapping) or "image_id" not in entry or "category_id" not in entry:
            raise DataError(path, "expected an object with image_id and category_id", f"result {i}")
        image_id, category_id = entry["image_id"], entry["category_id"]
        if category_id not in category_to_class:
            raise DataError(path, f"unknown category_id {category_id!r}", f"result {i}")
        score = entry.get("score", 1.0)
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise DataError(path, f"score must be a number, got {score!r}", f"result {i}")
        if image_id not in best or score > best[image_id][0]:
            best[image_id] = (float(score), category_to_class[category_id])
    _check_ids(path, best, known, split)
    missing = known - set(best)
    if missing:
        raise DataError(
            path, f"no prediction for {len(missing)} of {len(known)} images (e.g. image_id {min(missing)})"
        )
    y_true = np.array([r.label for r in split.records])
    y_pred = np.array([best[r.image_id][1] for r in split.records])
    return classification_metrics(y_true, y_pred, len(split.names), split.names).to_dict()
