"""Run a predictor over a split, write COCO-style results, and score them.

Detection: each image is preprocessed as on the board, the raw outputs are decoded
(:func:`~edgecnn.postprocess.decode_yolo`, anchors whose objectness is at most ``conf``
skipped), thresholded and suppressed per class (:func:`~edgecnn.postprocess.filter_detections`
with ``conf``, ``iou``, ``max_det``), mapped back to the image's own pixels and written as a
COCO results entry ``{image_id, category_id, bbox: [x, y, w, h], score}``. The defaults
(``conf`` 0.001, ``iou`` 0.6, ``max_det`` 100) are those of COCO-style mAP evaluation: a low
threshold so the whole precision-recall curve is measured.

Classification: one entry ``{image_id, category_id, score}`` per image, the top class and its
probability.

The results are scored by :func:`score_results`, the same steps as ``edgecnn eval
--predictions`` (:func:`edgecnn.metrics.results_file.score_predictions_file`), so a model's
report equals the report of its own results file.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.data.pipeline import iter_preprocessed
from edgecnn.data.records import ImageRecord, Split
from edgecnn.errors import UserError
from edgecnn.evaluation.predictor import Predictor
from edgecnn.metrics.classification import ClassificationMetrics, classification_metrics
from edgecnn.metrics.detection import (
    DetectionMetrics,
    GroundTruth,
    evaluate_detections,
    predictions_from_coco_results,
)
from edgecnn.postprocess import class_probabilities, decode_yolo, filter_detections
from edgecnn.postprocess.letterbox import Letterbox
from edgecnn.runtime.spec import ModelSpec

#: Default evaluation thresholds (COCO-style mAP: keep nearly everything).
EVAL_CONF = 0.001
EVAL_IOU = 0.6
EVAL_MAX_DET = 100


@dataclass(frozen=True)
class Evaluation:
    """A model's results on a split and their scores.

    Attributes:
        report: the JSON-ready report, the keys of ``edgecnn eval --predictions --json``.
        results: the COCO-style results list that was scored.
        metrics: the full metrics object (PR curves, confusion matrix).
    """

    report: dict[str, Any]
    results: list[dict[str, Any]]
    metrics: DetectionMetrics | ClassificationMetrics


def check_split_fits(split: Split, spec: ModelSpec, source: str | None = None) -> list[int]:
    """Refuse a split the model cannot be scored on, and map the model's classes to the split's.

    The model's class ``i`` is the split's class with the same name when the two name the same
    classes (in any order: a COCO export, a ``names:`` list written by hand); when the names
    differ, class ``i`` is the split's class ``i``, with a warning (once per pair of lists).

    Args:
        split: the ground truth.
        spec: the model's spec.
        source: the data.yaml, named first in the message when given.

    Returns:
        For each model class, the index of the split class it is scored as.

    Raises:
        UserError: another task or another number of classes, in one line.
    """
    where = f"{source}: " if source else ""
    if split.task != spec.task:
        raise UserError(
            f"{where}the model is a {spec.task} model but the {split.name} split is for {split.task}"
        )
    if len(split.names) != spec.num_classes:
        raise UserError(
            f"{where}the model has {spec.num_classes} classes ({', '.join(spec.labels)}) but the "
            f"{split.name} split has {len(split.names)} ({', '.join(split.names)})"
        )
    labels, names = tuple(spec.labels), tuple(split.names)
    if labels == names:
        return list(range(len(names)))
    if sorted(labels) == sorted(names) and len(set(names)) == len(names):
        _log_once(logging.INFO, "the model and the data list the same classes in another order; "
                  "matching classes by name")
        return [names.index(label) for label in labels]
    _log_once(
        logging.WARNING,
        f"class names differ between the model ({', '.join(labels)}) and the data ({', '.join(names)}); "
        "scoring by class index",
    )
    return list(range(len(names)))


@functools.lru_cache(maxsize=16)
def _log_once(level: int, message: str) -> None:
    """Log a message once per process: a command may check a split, then score two models."""
    logging.getLogger(__name__).log(level, message)


def _batches(split: Split, spec: ModelSpec, batch_size: int) -> Any:
    """Yield ``(images (B, H, W, C), records, letterboxes)`` batches in the split's order."""
    images: list[np.ndarray] = []
    records: list[ImageRecord] = []
    boxes: list[Letterbox] = []
    for tensor, record, info in iter_preprocessed(split, spec.input):
        images.append(tensor)
        records.append(record)
        boxes.append(info)
        if len(images) == batch_size:
            yield np.concatenate(images), records, boxes
            images, records, boxes = [], [], []
    if images:
        yield np.concatenate(images), records, boxes


def predict_results(
    predictor: Predictor,
    split: Split,
    spec: ModelSpec | None = None,
    conf: float = EVAL_CONF,
    iou: float = EVAL_IOU,
    max_det: int = EVAL_MAX_DET,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """Run ``predictor`` on every image of ``split`` and return COCO-style results.

    Args:
        predictor: the model.
        split: images (and ground truth) to run on.
        spec: the model spec; None uses ``predictor.spec``.
        conf: detection confidence threshold (objectness x class probability).
        iou: NMS IoU threshold (per class).
        max_det: detections kept per image after NMS.
        batch_size: images per predictor call; None uses ``predictor.batch_size``.
        progress: called with the number of images done after each batch.
        source: the data.yaml the split came from, named in the error when the split does not
            fit the model (:func:`check_split_fits`, called once, before the first image).

    Returns:
        Detection: ``[{image_id, category_id, bbox: [x, y, w, h], score}]`` in the images'
        own pixels; classification: ``[{image_id, category_id, score}]``, one per image.
        Category ids are the split's (:attr:`Split.category_ids`); a model class goes to the
        split's class of the same name when both list the same names (see
        :func:`check_split_fits`).
    """
    spec = spec or predictor.spec
    # The split's category id of each model class (the same class by name when they can be).
    categories = [split.category_ids[k] for k in check_split_fits(split, spec, source)]
    size = batch_size or predictor.batch_size or 1
    results: list[dict[str, Any]] = []
    done = 0
    for images, records, transforms in _batches(split, spec, size):
        raw = predictor.predict_batch(images)
        for i, (record, transform) in enumerate(zip(records, transforms, strict=True)):
            if spec.task == "classify":
                probs = class_probabilities(np.asarray(raw)[i], spec.output.class_activation)
                top = int(np.argmax(probs))
                results.append(
                    {
                        "image_id": record.image_id,
                        "category_id": int(categories[top]),
                        "score": float(probs[top]),
                    }
                )
                continue
            boxes, scores = decode_yolo(
                [o[i : i + 1] for o in raw],
                spec.output,
                spec.input.width,
                spec.input.height,
                spec.num_classes,
                min_objectness=conf,
            )
            dets = filter_detections(boxes, scores, conf=conf, iou=iou, max_det=max_det).to_source(transform)
            for box, score, cls in zip(
                dets.boxes.tolist(), dets.scores.tolist(), dets.class_ids.tolist(), strict=True
            ):
                results.append(
                    {
                        "image_id": record.image_id,
                        "category_id": int(categories[cls]),
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                        "score": score,
                    }
                )
        done += len(records)
        if progress is not None:
            progress(done)
    return results


def score_results(
    results: Sequence[Mapping[str, Any]], split: Split, max_dets: int = EVAL_MAX_DET
) -> tuple[dict[str, Any], DetectionMetrics | ClassificationMetrics]:
    """Score COCO-style results against a split, as ``edgecnn eval --predictions`` does.

    Returns:
        The report (the keys of :meth:`DetectionMetrics.to_dict` or
        :meth:`ClassificationMetrics.to_dict`, plus ``task``, ``split``, ``num_predictions``)
        and the metrics object.

    Raises:
        UserError: malformed results or image ids not in the split.
    """
    category_to_class = {int(c): k for k, c in enumerate(split.category_ids)}
    known = {r.image_id for r in split.records}
    metrics: DetectionMetrics | ClassificationMetrics
    if split.task == "detect":
        try:
            preds = predictions_from_coco_results(results, category_to_class)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        unknown = set(preds) - known
        if unknown:
            raise UserError(f"results for image ids not in the {split.name} split, e.g. {min(unknown)}")
        gt = {r.image_id: GroundTruth(r.boxes, r.class_ids, r.ignore) for r in split.records}
        metrics = evaluate_detections(gt, preds, len(split.names), split.names, max_dets=max_dets)
    else:
        best: dict[int, tuple[float, int]] = {}
        for entry in results:
            image_id, score = int(entry["image_id"]), float(entry.get("score", 1.0))
            if image_id not in best or score > best[image_id][0]:
                best[image_id] = (score, category_to_class[int(entry["category_id"])])
        missing = known - set(best)
        if missing:
            raise UserError(
                f"no result for {len(missing)} of {len(known)} images, e.g. image_id {min(missing)}"
            )
        y_true = np.array([r.label for r in split.records])
        y_pred = np.array([best[r.image_id][1] for r in split.records])
        metrics = classification_metrics(y_true, y_pred, len(split.names), split.names)
    report = metrics.to_dict()
    report.update({"task": split.task, "split": split.name, "num_predictions": len(results)})
    return report, metrics


def evaluate(
    predictor: Predictor,
    split: Split,
    spec: ModelSpec | None = None,
    conf: float = EVAL_CONF,
    iou: float = EVAL_IOU,
    max_det: int = EVAL_MAX_DET,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    source: str | None = None,
) -> Evaluation:
    """:func:`predict_results` then :func:`score_results`; returns report, results and metrics.

    COCO scoring keeps ``max_det`` detections per image and class, as NMS keeps ``max_det``
    per image. ``source`` (the data.yaml) is named when the split does not fit the model.
    """
    results = predict_results(predictor, split, spec, conf, iou, max_det, batch_size, progress, source)
    report, metrics = score_results(results, split, max_dets=max_det)
    return Evaluation(report, results, metrics)


def evaluate_model(
    predictor: Predictor,
    split: Split,
    spec: ModelSpec | None = None,
    conf: float = EVAL_CONF,
    iou: float = EVAL_IOU,
    max_det: int = EVAL_MAX_DET,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a model on a split; the report has the keys of ``edgecnn eval --predictions --json``.

    Detection: ``map50``, ``map50_95``, ``map75``, ``mar``, ``precision``, ``recall``, ``f1``,
    ``score_threshold``, ``per_class``, ...; classification: ``accuracy``, ``precision``,
    ``recall``, ``f1``, ``per_class``, ``confusion_matrix``; both add ``task``, ``split`` and
    ``num_predictions``. :func:`evaluate` also returns the COCO results list.

    Args:
        predictor: the model (:class:`~edgecnn.evaluation.keras_predictor.KerasPredictor`,
            :class:`~edgecnn.evaluation.tflite_predictor.TFLitePredictor` or any
            :class:`~edgecnn.evaluation.predictor.Predictor`).
        split: the images and their ground truth.
        spec: the model spec; None uses ``predictor.spec``.
        conf: detection confidence threshold. Default 0.001.
        iou: NMS IoU threshold. Default 0.6.
        max_det: detections kept per image. Default 100.
        batch_size: images per predictor call; None: the predictor's preference.
        progress: called with the number of images done.

    Raises:
        UserError: the split does not fit the model (task or class count).
    """
    return evaluate(predictor, split, spec, conf, iou, max_det, batch_size, progress).report
