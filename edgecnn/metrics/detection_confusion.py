"""Detection confusion matrix: which class each object was found as, or missed, and what was
found where there is nothing.

The detection counterpart of a classifier's confusion matrix (Ultralytics draws the same
picture). Per image, the predictions with a score at or above the operating point are
matched one to one to the ground-truth objects, whatever their classes: pairs with IoU >=
``iou`` are taken in order of decreasing IoU (on equal IoU the better score first, then the
earlier box), each object and each prediction at most once. Then, with ``K`` classes and
row = true class, column = predicted class (index ``K`` is "background"):

* a matched pair counts in ``[true class, predicted class]`` (the diagonal: found as itself);
* an object no prediction matched counts in ``[true class, K]`` (missed);
* a prediction that matched nothing counts in ``[K, predicted class]`` (a false detection),
  unless it lies on a crowd region (IoU >= ``iou`` with it, the crowd box's union being
  the prediction's own area, as in pycocotools): such predictions are not counted at all.

Crowd regions (COCO ``iscrowd``, VOC ``difficult``) are not objects to find: never counted
as missed. ``[K, K]`` is always 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecnn.metrics.detection import GroundTruth, Predictions, _coco_iou


def detection_confusion_matrix(
    gt: Mapping[Any, GroundTruth],
    preds: Mapping[Any, Predictions],
    num_classes: int,
    score_threshold: float | None,
    iou: float = 0.5,
) -> np.ndarray:
    """The ``(K + 1, K + 1)`` int64 confusion matrix of a detector (see the module docstring).

    Args:
        gt: ground truth per image id (images without objects included).
        preds: predictions per image id; a missing image has none.
        num_classes: ``K``; class ids are ``0..K-1``.
        score_threshold: predictions with a lower score are left out; None leaves out all
            of them (no operating point: every object counts as missed).
        iou: the IoU a prediction needs with an object to be matched to it.

    Returns:
        Rows: true class, then background; columns: predicted class, then background.
    """
    k = num_classes
    matrix = np.zeros((k + 1, k + 1), dtype=np.int64)
    for image_id, truth in gt.items():
        crowd = truth.iscrowd
        objects = truth.boxes[~crowd]
        object_classes = truth.class_ids[~crowd]
        found = preds.get(image_id)
        if found is None or score_threshold is None:
            keep = np.zeros(0, dtype=np.int64)
            found = Predictions.empty()
        else:
            keep = np.flatnonzero(found.scores >= score_threshold)
        boxes, classes, scores = found.boxes[keep], found.class_ids[keep], found.scores[keep]
        pairs_g, pairs_d = _matches(objects, boxes, scores, iou)
        np.add.at(matrix, (object_classes[pairs_g], classes[pairs_d]), 1)
        missed = np.ones(len(objects), dtype=bool)
        missed[pairs_g] = False
        np.add.at(matrix, (object_classes[missed], k), 1)
        extra = np.ones(len(boxes), dtype=bool)
        extra[pairs_d] = False
        if crowd.any() and extra.any():
            regions = truth.boxes[crowd]
            on_crowd = _coco_iou(boxes, regions, np.ones(len(regions), dtype=bool)) >= iou
            extra &= ~on_crowd.any(axis=1)
        np.add.at(matrix, (k, classes[extra]), 1)
    return matrix


def _matches(
    objects: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one ``(object index, prediction index)`` pairs, greedily by decreasing IoU."""
    if not len(objects) or not len(boxes):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    overlap = _coco_iou(boxes, objects, np.zeros(len(objects), dtype=bool))  # (D, G)
    d, g = np.nonzero(overlap >= iou)
    # decreasing IoU, then decreasing score, then earlier prediction, then earlier object
    order = np.lexsort((g, d, -scores[d], -overlap[d, g]))
    used_d: set[int] = set()
    used_g: set[int] = set()
    out_g: list[int] = []
    out_d: list[int] = []
    for i in order.tolist():
        di, gi = int(d[i]), int(g[i])
        if di not in used_d and gi not in used_g:
            used_d.add(di)
            used_g.add(gi)
            out_g.append(gi)
            out_d.append(di)
    return np.array(out_g, dtype=np.int64), np.array(out_d, dtype=np.int64)
