"""Anchor boxes for YOLO heads, fitted to a dataset's boxes by k-means with an IoU distance.

As in YOLOv2: the distance between a box and a centre is ``1 - IoU`` of the two sizes placed
at the same corner, so that large and small boxes weigh alike (a Euclidean distance on
``(w, h)`` lets large boxes dominate). :func:`anchors_for_model` first scales every training
box to the model's input pixels the way the letterbox (or stretch) does, clusters, sorts the
anchors by area and gives the smallest to the smallest stride.

Two figures say how well anchors fit (:func:`anchor_fitness`): the mean over boxes of the
best IoU with any anchor ("avg IoU" in darknet) and the best possible recall (BPR), the
share of boxes whose best IoU exceeds a threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgecnn.data.records import Split
from edgecnn.errors import UserError
from edgecnn.runtime.spec import InputSpec

logger = logging.getLogger(__name__)

#: Default IoU above which a box counts as covered by an anchor in the BPR.
BPR_IOU = 0.5


def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU ``(N, K)`` between box sizes and anchor sizes, both placed at the same corner."""
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


def anchor_fitness(
    wh: np.ndarray, anchors: np.ndarray, iou_threshold: float = BPR_IOU
) -> tuple[float, float]:
    """``(mean best IoU, BPR)`` of anchors on box sizes; BPR: share with best IoU > ``iou_threshold``."""
    best = wh_iou(wh, anchors).max(axis=1)
    return float(best.mean()), float((best > iou_threshold).mean())


def _kmeans_pp(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with the ``1 - IoU`` distance."""
    centres = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):
        distance = 1 - wh_iou(wh, np.array(centres)).max(axis=1)
        weights = distance**2
        centres.append(wh[rng.choice(len(wh), p=weights / weights.sum())])
    return np.array(centres)


def _lloyd(wh: np.ndarray, centres: np.ndarray, iters: int) -> np.ndarray:
    """Lloyd iterations: assign each box to its best-IoU centre, move centres to the median."""
    for _ in range(iters):
        iou = wh_iou(wh, centres)
        nearest = iou.argmax(axis=1)
        moved = centres.copy()
        for j in range(len(centres)):
            members = wh[nearest == j]
            moved[j] = np.median(members, axis=0) if len(members) else wh[iou.max(axis=1).argmin()]
        if np.array_equal(moved, centres):
            break
        centres = moved
    return centres


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, iters: int = 300, n_init: int = 3) -> np.ndarray:
    """Cluster box sizes into ``k`` anchors with the ``1 - IoU`` distance.

    k-means++ seeding, then Lloyd iterations (each centre moves to the median size of its
    boxes) until nothing moves or ``iters`` is reached; the best of ``n_init`` runs by mean
    best IoU is kept. An emptied cluster restarts at the worst-fitted box.

    Args:
        wh: ``(N, 2)`` box widths and heights; boxes with a side <= 0 are ignored.
        k: number of anchors.
        seed: the random seed (same seed and data, same anchors).
        iters: most Lloyd iterations per run.
        n_init: runs from different seedings.

    Returns:
        ``(k, 2)`` float64 anchors ``(w, h)``, sorted by area, smallest first.

    Raises:
        UserError: fewer than ``k`` distinct box sizes (k-means needs at least one per
            anchor; there is no silent fallback, use the architecture's default anchors).
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    wh = wh[(wh > 0).all(axis=1)]
    if k < 1 or n_init < 1:
        raise UserError(f"k and n_init must be >= 1, got {k} and {n_init}")
    distinct = len(np.unique(wh, axis=0))
    if distinct < k:
        raise UserError(
            f"{len(wh)} boxes ({distinct} distinct sizes) are too few for {k} anchors; "
            "label more images or keep the architecture's default anchors"
        )
    runs = [_lloyd(wh, _kmeans_pp(wh, k, np.random.default_rng([seed, run])), iters) for run in range(n_init)]
    anchors = max(runs, key=lambda c: wh_iou(wh, c).max(axis=1).mean())
    return anchors[np.argsort(anchors[:, 0] * anchors[:, 1], kind="stable")]


def input_box_sizes(split: Split, input_spec: InputSpec) -> np.ndarray:
    """``(N, 2)`` widths and heights of every box, in the model's input pixels.

    Scaled as :func:`~edgecnn.postprocess.letterbox.letterbox` (one scale, resized sides
    rounded) or :func:`~edgecnn.postprocess.letterbox.stretch` would scale the image, from the
    record's width and height (no image is read). Crowd regions and difficult objects are left
    out, as they are of the training targets.
    """
    sizes = []
    for record in split.records:
        boxes = record.boxes[~record.ignore]
        if not len(boxes):
            continue
        w, h = record.width, record.height
        if input_spec.resize == "letterbox":
            scale = min(input_spec.width / w, input_spec.height / h)
            sx, sy = max(1, round(w * scale)) / w, max(1, round(h * scale)) / h
        else:
            sx, sy = input_spec.width / w, input_spec.height / h
        b = boxes.astype(np.float64)
        sizes.append(np.stack([(b[:, 2] - b[:, 0]) * sx, (b[:, 3] - b[:, 1]) * sy], axis=1))
    return np.concatenate(sizes) if sizes else np.zeros((0, 2))


@dataclass(frozen=True)
class AnchorFit:
    """Anchors fitted to a dataset, and how well they fit.

    Args:
        anchors: per scale, smallest stride first, ``(w, h)`` pairs in input pixels (the
            layout of :attr:`edgecnn.runtime.spec.OutputSpec.anchors`).
        fitness: mean over boxes of the best IoU with any anchor.
        bpr: share of boxes whose best IoU exceeds ``iou_threshold``.
        iou_threshold: the BPR threshold.
        num_boxes: boxes used (those at least ``min_size`` pixels on both sides).
    """

    anchors: list[list[tuple[float, float]]]
    fitness: float
    bpr: float
    iou_threshold: float
    num_boxes: int


def anchors_for_model(
    split: Split,
    input_spec: InputSpec,
    num_scales: int,
    anchors_per_scale: int,
    seed: int = 0,
    iou_threshold: float = BPR_IOU,
    min_size: float = 2.0,
) -> AnchorFit:
    """Fit ``num_scales * anchors_per_scale`` anchors to a (training) split for a model input.

    Boxes are scaled to input pixels (:func:`input_box_sizes`); boxes under ``min_size``
    pixels on a side are left out (as Ultralytics does below 2 px). The sorted anchors are
    dealt to scales in groups of ``anchors_per_scale``, smallest first, so the first scale
    (smallest stride) gets the smallest anchors. Anchors are rounded to 0.1 px; the figures
    are measured after rounding and logged.

    Raises:
        UserError: a detection split is needed, or too few boxes for the anchors (see
            :func:`kmeans_anchors`).
    """
    if split.task != "detect":
        raise UserError(f"anchors need a detection split; {split.name} is for {split.task}")
    if num_scales < 1 or anchors_per_scale < 1:
        raise UserError(
            f"num_scales and anchors_per_scale must be >= 1, got {num_scales} and {anchors_per_scale}"
        )
    wh = input_box_sizes(split, input_spec)
    wh = wh[(wh >= min_size).all(axis=1)]
    anchors = np.round(kmeans_anchors(wh, num_scales * anchors_per_scale, seed=seed), 1)
    fitness, bpr = anchor_fitness(wh, anchors, iou_threshold)
    logger.info(
        "anchors from %d boxes of the %s split: mean best IoU %.3f, BPR (IoU > %.2f) %.3f",
        len(wh),
        split.name,
        fitness,
        iou_threshold,
        bpr,
    )
    groups = [
        [(float(w), float(h)) for w, h in anchors[i * anchors_per_scale : (i + 1) * anchors_per_scale]]
        for i in range(num_scales)
    ]
    return AnchorFit(groups, fitness, bpr, iou_threshold, len(wh))
