"""pycocotools as the oracle for detection metrics.

The ground truth and predictions used by edgecnn are turned into in-memory COCO objects
(``COCO(); coco.dataset = {...}; coco.createIndex()`` and ``loadRes``) and evaluated with
``COCOeval(iouType="bbox")``; its progress prints are swallowed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgecnn.metrics.detection import GroundTruth, Predictions


def coco_categories(num_classes: int) -> list[int]:
    """COCO category ids used for class ids ``0..K-1``: sparse on purpose (1, 3, 5, ...)."""
    return [2 * k + 1 for k in range(num_classes)]


def coco_results(preds: Mapping[int, Predictions], num_classes: int) -> list[dict[str, Any]]:
    """A COCO results list (``bbox`` as ``[x, y, w, h]``) for edgecnn predictions."""
    cats = coco_categories(num_classes)
    results = []
    for image_id, p in preds.items():
        for box, score, cls in zip(p.boxes, p.scores, p.class_ids, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": cats[int(cls)],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    return results


def _coco_ground_truth(gt: Mapping[int, GroundTruth], num_classes: int) -> COCO:
    cats = coco_categories(num_classes)
    annotations = []
    for image_id, g in gt.items():
        for box, cls, crowd in zip(g.boxes, g.class_ids, g.iscrowd, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    # ids from 1: COCOeval reads a match with id 0 as "no match"
                    "id": len(annotations) + 1,
                    "image_id": int(image_id),
                    "category_id": cats[int(cls)],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(crowd),
                }
            )
    coco = COCO()
    coco.dataset = {
        "images": [{"id": int(i), "width": 640, "height": 480} for i in gt],
        "annotations": annotations,
        "categories": [{"id": c, "name": f"c{c}"} for c in cats],
    }
    coco.createIndex()
    return coco


def run_cocoeval(
    gt: Mapping[int, GroundTruth],
    preds: Mapping[int, Predictions] | Sequence[Mapping[str, Any]],
    num_classes: int,
    max_dets: int = 100,
) -> COCOeval:
    """Evaluate with pycocotools; ``preds`` may also be a COCO results list.

    With ``max_dets=100`` the COCO default ``maxDets=[1, 10, 100]`` is used and
    ``summarize()`` is run, so ``stats`` is filled; otherwise ``maxDets=[max_dets]``.
    pycocotools cannot load an empty results list.
    """
    results = coco_results(preds, num_classes) if isinstance(preds, Mapping) else [dict(r) for r in preds]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = _coco_ground_truth(gt, num_classes)
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.maxDets = [1, 10, 100] if max_dets == 100 else [max_dets]
        ev.evaluate()
        ev.accumulate()
        if max_dets == 100:
            ev.summarize()
    return ev


def coco_arrays(ev: COCOeval, max_dets: int = 100) -> dict[str, np.ndarray]:
    """``precision`` (T, R, K), ``recall`` (T, K), ``scores`` (T, R, K) for area "all" and ``max_dets``."""
    m = ev.params.maxDets.index(max_dets)
    return {
        "precision": ev.eval["precision"][:, :, :, 0, m],
        "recall": ev.eval["recall"][:, :, 0, m],
        "scores": ev.eval["scores"][:, :, :, 0, m],
    }


class CocoOracle:
    """The helpers above, handed to tests by the ``coco_oracle`` fixture."""

    categories = staticmethod(coco_categories)
    results = staticmethod(coco_results)
    evaluate = staticmethod(run_cocoeval)
    arrays = staticmethod(coco_arrays)


@pytest.fixture(scope="session")
def coco_oracle() -> CocoOracle:
    """pycocotools' COCOeval on edgecnn ground truth and predictions (see :class:`CocoOracle`)."""
    return CocoOracle()
