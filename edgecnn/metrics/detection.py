"""COCO-style detection metrics (box AP), equal to pycocotools' ``COCOeval`` for ``bbox``.

The evaluation follows pycocotools step by step, with the default COCO parameters for
area range "all":

1. Per image and class, predictions are sorted by score, highest first (a stable sort, so
   equal scores keep their input order) and only the first ``max_dets`` are kept.
2. IoU between a prediction and a ground-truth box is intersection / union of the two
   rectangles, with no "+1" on pixel sizes. For a crowd box (``iscrowd``) the union is the
   prediction's own area, so a prediction inside a crowd region has IoU 1.
3. At each IoU threshold ``t`` in 0.50, 0.55, ..., 0.95, predictions are matched greedily in
   score order: each takes the not-yet-matched ground-truth box with the highest IoU >= t
   (on equal IoU, the later box in input order). Regular boxes are preferred over crowd
   boxes; crowd boxes can absorb any number of predictions. A matched prediction is a
   true positive, an unmatched one a false positive, and one matched to a crowd box is
   ignored (neither).
4. Per class, the kept predictions of all images are ranked by score (stable: ties keep
   image order, images ordered by id). Along the ranking, recall = TP / G and precision =
   TP / (TP + FP), where G is the number of non-crowd ground-truth boxes of the class.
   Precision is made monotone (each point takes the maximum precision at any higher
   recall) and read at the 101 recall points 0.00, 0.01, ..., 1.00 (0 where that recall is
   never reached). AP at ``t`` is the mean of those 101 values.
5. AP50 is AP at IoU 0.50; AP50:95 is the mean of AP over the ten thresholds. mAP is the
   mean over classes that have at least one non-crowd ground-truth box; classes without
   are excluded (pycocotools marks them -1).

Boxes are corners ``xyxy`` in pixels. Areas are box areas ``w * h`` (COCO ground truth
uses segmentation areas; those only matter for the small/medium/large ranges, which are
not computed here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.metrics.classification import class_names
from edgecnn.postprocess.boxes import xywh_to_xyxy

# pycocotools' Params.setDetParams, built the same way so the floats are identical.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)
# Area range "all" of pycocotools: boxes outside it are ignored (never, for sane boxes).
AREA_RANGE_ALL = (0.0, 1e5**2)
# Upper bound on the elements of the padded arrays used to match one chunk of
# (image, class) pairs at once; bounds memory to some tens of MB.
_MATCH_BUDGET = 1 << 20


def _boxes(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what} must have shape (N, 4), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    bad = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}[{i}] = {arr[i].tolist()} is not xyxy (needs x2 >= x1 and y2 >= y1)")
    return arr


def _vector(value: Any, what: str, n: int, dtype: type) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0 and n == 0:
        return np.zeros(0, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},), got {arr.shape}")
    if dtype is np.int64 and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"{what} must hold integers, got dtype {arr.dtype}")
    return arr.astype(dtype)


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth boxes of one image.

    Attributes:
        boxes: ``(N, 4)`` corners ``xyxy`` in pixels (converted to float64).
        class_ids: ``(N,)`` integer class ids.
        iscrowd: ``(N,)`` bools, True for COCO crowd regions (matches there are ignored);
            default all False.
    """

    boxes: np.ndarray
    class_ids: np.ndarray
    iscrowd: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = _boxes(self.boxes, "boxes")
        n = len(boxes)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "class_ids", _vector(self.class_ids, "class_ids", n, np.int64))
        crowd = np.zeros(n, dtype=bool) if self.iscrowd is None else self.iscrowd
        object.__setattr__(self, "iscrowd", _vector(crowd, "iscrowd", n, bool))

    @classmethod
    def empty(cls) -> GroundTruth:
        """An image without objects."""
        return cls(np.zeros((0, 4)), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Predictions:
    """Predicted boxes of one image.

    Attributes:
        boxes: ``(N, 4)`` corners ``xyxy`` in pixels (converted to float64).
        scores: ``(N,)`` confidences; AP depends only on their order, the best-F1
            threshold is one of their values.
        class_ids: ``(N,)`` integer class ids.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __post_init__(self) -> None:
        boxes = _boxes(self.boxes, "boxes")
        n = len(boxes)
        scores = _vector(self.scores, "scores", n, np.float64)
        if not np.isfinite(scores).all():
            raise ValueError("scores contain NaN or infinite values")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", _vector(self.class_ids, "class_ids", n, np.int64))

    @classmethod
    def empty(cls) -> Predictions:
        """An image without predictions."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class DetectionMetrics:
    """Result of :func:`evaluate_detections`. ``T`` IoU thresholds, ``R`` recall points, ``K`` classes.

    Attributes:
        names: class names, index = class id.
        max_dets: predictions kept per image and class.
        num_images: number of evaluated images.
        iou_thresholds: ``(T,)`` 0.50, 0.55, ..., 0.95.
        recall_thresholds: ``(R,)`` 0.00, 0.01, ..., 1.00.
        precision: ``(T, R, K)`` interpolated precision at each recall point (pycocotools'
            ``eval["precision"]`` for area "all" and ``max_dets``); -1 for classes without
            ground truth. ``precision[0, :, k]`` against ``recall_thresholds`` is the PR
            curve of class ``k`` at IoU 0.5 (see :meth:`pr_curve`).
        recall: ``(T, K)`` recall reached with all kept predictions; -1 without ground truth.
        scores: ``(T, R, K)`` score of the prediction at which each precision point is read
            (0 where the recall is never reached); -1 without ground truth.
        num_gt: ``(K,)`` non-crowd ground-truth boxes per class.
        score_threshold: the best-F1 operating point at IoU 0.5: the score threshold
            (predictions with score >= it are kept) that maximises the macro F1 over classes
            with ground truth; the highest such threshold on ties. None when no class with
            ground truth has a prediction.
        class_precision, class_recall: ``(K,)`` uninterpolated precision and recall at IoU 0.5
            of the predictions with score >= ``score_threshold`` (predictions matched to crowd
            boxes do not count); NaN for classes without ground truth, 0 when no threshold.
        confusion: ``(K + 1, K + 1)`` detection confusion matrix at ``score_threshold`` and
            IoU 0.5 (rows: true class, columns: predicted class, index ``K`` background; see
            :mod:`edgecnn.metrics.detection_confusion`); None when not computed.
    """

    names: tuple[str, ...]
    max_dets: int
    num_images: int
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    num_gt: np.ndarray
    score_threshold: float | None
    class_precision: np.ndarray
    class_recall: np.ndarray
    confusion: np.ndarray | None = None

    @property
    def has_gt(self) -> np.ndarray:
        """``(K,)`` True for classes with at least one non-crowd ground-truth box."""
        return self.num_gt > 0

    @property
    def ap(self) -> np.ndarray:
        """``(T, K)`` AP per IoU threshold and class (mean over recall points); NaN without GT."""
        ap = self.precision.mean(axis=1)
        ap[:, ~self.has_gt] = np.nan
        return ap

    @property
    def ap50(self) -> np.ndarray:
        """``(K,)`` AP at IoU 0.50 per class; NaN for classes without ground truth."""
        return self.ap[0]

    @property
    def ap50_95(self) -> np.ndarray:
        """``(K,)`` AP averaged over IoU 0.50:0.05:0.95 per class; NaN without ground truth."""
        return self.ap.mean(axis=0)

    def _mean(self, values: np.ndarray) -> float | None:
        # pycocotools' summarize(): the mean of every entry that is not -1.
        valid = values[..., self.has_gt]
        return float(valid.mean()) if valid.size else None

    @property
    def map50(self) -> float | None:
        """Mean AP at IoU 0.50 over classes with ground truth (COCOeval ``stats[1]``); None if none."""
        return self._mean(self.precision[0])

    @property
    def map75(self) -> float | None:
        """Mean AP at IoU 0.75 over classes with ground truth (COCOeval ``stats[2]``); None if none."""
        return self._mean(self.precision[5])

    @property
    def map50_95(self) -> float | None:
        """Mean AP over IoU 0.50:0.95 and classes with ground truth (COCOeval ``stats[0]``)."""
        return self._mean(self.precision)

    @property
    def mar(self) -> float | None:
        """Mean recall over IoU 0.50:0.95 and classes with ground truth: COCO's AR@``max_dets``
        (COCOeval ``stats[8]`` when ``max_dets`` is 100)."""
        return self._mean(self.recall)

    @property
    def class_f1(self) -> np.ndarray:
        """``(K,)`` F1 of :attr:`class_precision` and :attr:`class_recall` (0 when both are 0)."""
        p, r = self.class_precision, self.class_recall
        f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)
        f1[np.isnan(p)] = np.nan
        return f1

    @property
    def mean_precision(self) -> float | None:
        """Mean of :attr:`class_precision` over classes with ground truth."""
        return float(self.class_precision[self.has_gt].mean()) if self.has_gt.any() else None

    @property
    def mean_recall(self) -> float | None:
        """Mean of :attr:`class_recall` over classes with ground truth."""
        return float(self.class_recall[self.has_gt].mean()) if self.has_gt.any() else None

    @property
    def mean_f1(self) -> float | None:
        """Mean of :attr:`class_f1` over classes with ground truth (the maximised macro F1)."""
        return float(self.class_f1[self.has_gt].mean()) if self.has_gt.any() else None

    def pr_curve(self, class_id: int, iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """``(recall, precision)`` points of one class at one IoU threshold (101 points each).

        The precision is COCO's interpolated precision; all -1 for a class without ground truth.
        """
        t = np.flatnonzero(np.isclose(self.iou_thresholds, iou))
        if t.size != 1:
            raise ValueError(f"iou must be one of {np.round(self.iou_thresholds, 2).tolist()}, got {iou}")
        return self.recall_thresholds.copy(), self.precision[t[0], :, class_id].copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary.

        Keys: ``map50``, ``map50_95``, ``map75``, ``mar``; ``precision``, ``recall``, ``f1``
        and ``score_threshold`` (the best-F1 operating point at IoU 0.5); ``num_images``,
        ``max_dets``; ``per_class`` ``{name: {ap50, ap50_95, precision, recall, num_gt}}``.
        Values that are undefined (no ground truth) are None.
        """

        def num(x: float | None) -> float | None:
            return None if x is None or math.isnan(x) else float(x)

        per_class = {}
        ap50, ap50_95 = self.ap50, self.ap50_95
        for k, name in enumerate(self.names):
            per_class[name] = {
                "ap50": num(ap50[k]),
                "ap50_95": num(ap50_95[k]),
                "precision": num(self.class_precision[k]),
                "recall": num(self.class_recall[k]),
                "num_gt": int(self.num_gt[k]),
            }
        return {
            "map50": self.map50,
            "map50_95": self.map50_95,
            "map75": self.map75,
            "mar": self.mar,
            "precision": self.mean_precision,
            "recall": self.mean_recall,
            "f1": self.mean_f1,
            "score_threshold": self.score_threshold,
            "num_images": self.num_images,
            "max_dets": self.max_dets,
            "per_class": per_class,
        }


def _ragged(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and flat indices of segments ``starts[i] : starts[i] + counts[i]``."""
    rows = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    cols = np.arange(int(counts.sum())) - np.repeat(offsets, counts)
    return rows, cols, np.repeat(starts, counts) + cols


def _coco_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU ``(..., D, G)`` as pycocotools' ``bbIou``: a crowd box's union is the prediction's area."""
    d = d[..., :, None, :]
    g = g[..., None, :, :]
    iw = np.minimum(d[..., 2], g[..., 2]) - np.maximum(d[..., 0], g[..., 0])
    ih = np.minimum(d[..., 3], g[..., 3]) - np.maximum(d[..., 1], g[..., 1])
    overlap = (iw > 0) & (ih > 0)
    inter = np.where(overlap, iw * ih, 0.0)
    d_area = (d[..., 2] - d[..., 0]) * (d[..., 3] - d[..., 1])
    g_area = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    union = np.where(crowd[..., None, :], d_area, d_area + g_area - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=overlap)


def _last_argmax(values: np.ndarray) -> np.ndarray:
    """Index of the last maximum along the last axis (pycocotools keeps the later box on ties)."""
    return values.shape[-1] - 1 - np.argmax(values[..., ::-1], axis=-1)


def _match_chunk(
    iou: np.ndarray, g_ignore: np.ndarray, g_crowd: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching of padded pairs.

    Args:
        iou: ``(P, D, G)`` IoU of the score-sorted predictions against the ground truth of
            P (image, class) pairs; padding is -1 so it never matches.
        g_ignore, g_crowd: ``(P, G)`` ground-truth flags.
        thresholds: ``(T,)`` IoU thresholds.

    Returns:
        ``matched`` and ``matched_ignored`` ``(P, T, D)``: the prediction matched a box, and
        that box is ignored (a crowd box).
    """
    num_p, num_d, num_g = iou.shape
    thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    taken = np.zeros((num_p, len(thresholds), num_g), dtype=bool)
    matched = np.zeros((num_p, len(thresholds), num_d), dtype=bool)
    matched_ignored = np.zeros_like(matched)
    reusable = g_crowd[:, None, :]
    regular = ~g_ignore[:, None, :]
    # Rows where prediction d overlaps some box enough to match at the lowest threshold.
    candidate = iou.max(axis=2, initial=-1.0) >= thr.min()
    for d in range(num_d):
        rows = np.flatnonzero(candidate[:, d])
        if rows.size == 0:
            continue
        x = iou[rows, d][:, None, :]
        ok = (x >= thr) & ~(taken[rows] & ~reusable[rows])
        ok_regular = ok & regular[rows]
        has_regular = ok_regular.any(axis=-1)
        best = np.where(
            has_regular,
            _last_argmax(np.where(ok_regular, x, -1.0)),
            _last_argmax(np.where(ok, x, -1.0)),
        )
        hit = ok.any(axis=-1)
        r, t = np.nonzero(hit)
        p, m = rows[r], best[r, t]
        taken[p, t, m] = True
        matched[p, t, d] = True
        matched_ignored[p, t, d] = g_ignore[p, m]
    return matched, matched_ignored


def _segments(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique keys, start offsets and lengths of runs in a sorted key array."""
    if sorted_keys.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    counts = np.diff(np.r_[starts, sorted_keys.size])
    return sorted_keys[starts], starts, counts


def _stack(
    items: Sequence[tuple[int, Any, GroundTruth | Predictions]], num_classes: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """(image, class) pair keys and boxes of every object, image by image.

    ``items`` are ``(position of the image in sorted id order, image id, objects)``; the key
    of an object is ``position * num_classes + class_id``.
    """
    for _, image_id, obj in items:
        bad = (obj.class_ids < 0) | (obj.class_ids >= num_classes)
        if bad.any():
            raise ValueError(
                f"{what} of image {image_id!r}: class id {int(obj.class_ids[bad][0])} "
                f"not in 0..{num_classes - 1}"
            )
    if not items:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4))
    counts = [len(obj.boxes) for _, _, obj in items]
    img = np.repeat(np.array([pos for pos, _, _ in items], dtype=np.int64), counts)
    cls = np.concatenate([obj.class_ids for _, _, obj in items])
    return img * num_classes + cls, np.concatenate([obj.boxes for _, _, obj in items])


def _out_of_range(boxes: np.ndarray) -> np.ndarray:
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return (area < AREA_RANGE_ALL[0]) | (area > AREA_RANGE_ALL[1])


@dataclass(frozen=True)
class _GroundTruthTable:
    """All ground-truth boxes sorted by pair key, input order kept inside a pair."""

    key: np.ndarray
    boxes: np.ndarray
    crowd: np.ndarray
    ignore: np.ndarray  # crowd, or outside the "all" area range


@dataclass(frozen=True)
class _PredictionTable:
    """Kept predictions sorted by pair key, then score descending (stable); ``rank`` within the pair."""

    key: np.ndarray
    rank: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray


def _ground_truth_table(
    gt: Mapping[Any, GroundTruth], image_ids: list, num_classes: int
) -> _GroundTruthTable:
    key, boxes = _stack([(n, i, gt[i]) for n, i in enumerate(image_ids)], num_classes, "ground truth")
    crowd = np.concatenate([gt[i].iscrowd for i in image_ids]) if image_ids else np.zeros(0, dtype=bool)
    order = np.argsort(key, kind="stable")
    boxes, crowd = boxes[order], crowd[order]
    return _GroundTruthTable(key[order], boxes, crowd, crowd | _out_of_range(boxes))


def _prediction_table(
    preds: Mapping[Any, Predictions], image_ids: list, num_classes: int, max_dets: int
) -> _PredictionTable:
    items = [(n, i, preds[i]) for n, i in enumerate(image_ids) if i in preds]
    key, boxes = _stack(items, num_classes, "predictions")
    scores = np.concatenate([p.scores for _, _, p in items]) if items else np.zeros(0)
    order = np.lexsort((-scores, key))  # stable: equal scores keep their input order
    key = key[order]
    _, starts, counts = _segments(key)
    rank = np.arange(key.size) - np.repeat(starts, counts)
    kept = rank < max_dets
    order = order[kept]
    return _PredictionTable(key[kept], rank[kept], boxes[order], scores[order])


def _match(
    g: _GroundTruthTable, d: _PredictionTable, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``matched`` and ``matched_ignored`` ``(T, num predictions)`` for every kept prediction.

    Pairs with both predictions and ground truth are padded to common sizes and matched
    together (:func:`_match_chunk`), in chunks that keep the padded arrays small.
    """
    num_t = len(thresholds)
    matched = np.zeros((num_t, d.key.size), dtype=bool)
    matched_ignored = np.zeros((num_t, d.key.size), dtype=bool)
    g_pairs, g_starts, g_counts = _segments(g.key)
    d_pairs, d_starts, d_counts = _segments(d.key)
    _, gi, di = np.intersect1d(g_pairs, d_pairs, assume_unique=True, return_indices=True)
    by_size = np.lexsort((d_counts[di], g_counts[gi]))  # similar sizes share a chunk
    gi, di = gi[by_size], di[by_size]
    lo = 0
    while lo < gi.size:
        hi, max_g, max_d = lo, 0, 0
        while hi < gi.size:
            g_n, d_n = max(max_g, g_counts[gi[hi]]), max(max_d, d_counts[di[hi]])
            if hi > lo and (hi - lo + 1) * g_n * max(d_n, num_t) > _MATCH_BUDGET:
                break
            max_g, max_d, hi = g_n, d_n, hi + 1
        n_pairs = hi - lo
        g_rows, g_cols, g_idx = _ragged(g_starts[gi[lo:hi]], g_counts[gi[lo:hi]])
        d_rows, d_cols, d_idx = _ragged(d_starts[di[lo:hi]], d_counts[di[lo:hi]])
        pad_g = np.zeros((n_pairs, max_g, 4))
        pad_g[g_rows, g_cols] = g.boxes[g_idx]
        pad_crowd = np.zeros((n_pairs, max_g), dtype=bool)
        pad_crowd[g_rows, g_cols] = g.crowd[g_idx]
        pad_ignore = np.zeros((n_pairs, max_g), dtype=bool)
        pad_ignore[g_rows, g_cols] = g.ignore[g_idx]
        pad_d = np.zeros((n_pairs, max_d, 4))
        pad_d[d_rows, d_cols] = d.boxes[d_idx]
        real_g = np.zeros((n_pairs, max_g), dtype=bool)
        real_g[g_rows, g_cols] = True
        real_d = np.zeros((n_pairs, max_d), dtype=bool)
        real_d[d_rows, d_cols] = True
        iou = np.where(real_d[:, :, None] & real_g[:, None, :], _coco_iou(pad_d, pad_g, pad_crowd), -1.0)
        m, m_ig = _match_chunk(iou, pad_ignore, pad_crowd, thresholds)
        matched[:, d_idx] = m[d_rows, :, d_cols].T
        matched_ignored[:, d_idx] = m_ig[d_rows, :, d_cols].T
        lo = hi
    return matched, matched_ignored


def _accumulate(
    d: _PredictionTable, matched: np.ndarray, ignored: np.ndarray, num_gt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Per class precision ``(T, R, K)``, recall ``(T, K)``, scores ``(T, R, K)`` as COCOeval.accumulate.

    Also returns, per class with ground truth, the IoU-0.5 ranking used by :func:`_best_f1`.
    """
    num_k = len(num_gt)
    num_t, num_r = matched.shape[0], len(RECALL_THRESHOLDS)
    # Rank by score over all images; ties keep image order, then the order inside the image.
    cls, img = d.key % num_k, d.key // num_k
    order = np.lexsort((d.rank, img, -d.scores, cls))
    cls, ranked_scores = cls[order], d.scores[order]
    tps = matched[:, order] & ~ignored[:, order]
    fps = ~matched[:, order] & ~ignored[:, order]
    bounds = np.searchsorted(cls, np.arange(num_k + 1))

    precision = -np.ones((num_t, num_r, num_k))
    recall = -np.ones((num_t, num_k))
    scores = -np.ones((num_t, num_r, num_k))
    ranked: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in np.flatnonzero(num_gt):
        a, b = bounds[k], bounds[k + 1]
        tp = np.cumsum(tps[:, a:b], axis=1).astype(float)
        fp = np.cumsum(fps[:, a:b], axis=1).astype(float)
        rc = tp / num_gt[k]
        pr = tp / (fp + tp + np.spacing(1))  # pycocotools' expression, for identical floats
        precision[:, :, k] = 0.0
        scores[:, :, k] = 0.0
        recall[:, k] = rc[:, -1] if b > a else 0.0
        if b > a:
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for t in range(num_t):
                idx = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                ok = idx < b - a
                precision[t, ok, k] = pr[t, idx[ok]]
                scores[t, ok, k] = ranked_scores[a:b][idx[ok]]
        counted = ~ignored[0, order[a:b]]
        ranked[int(k)] = (ranked_scores[a:b][counted], np.cumsum(tps[0, a:b][counted]))
    return precision, recall, scores, ranked


def evaluate_detections(
    gt: Mapping[int, GroundTruth],
    preds: Mapping[int, Predictions],
    num_classes: int,
    names: Sequence[str] | None = None,
    max_dets: int = 100,
) -> DetectionMetrics:
    """COCO box AP (AP50, AP50:95, per class) plus a best-F1 operating point.

    Equal to pycocotools' ``COCOeval(iouType="bbox")`` with ``maxDets=[max_dets]``, area range
    "all", on the same boxes; the algorithm is described in the module docstring.

    Args:
        gt: ground truth per image id; every evaluated image must be a key, images without
            objects included (:meth:`GroundTruth.empty`). Image ids must be sortable.
        preds: predictions per image id; a missing image has no predictions.
        num_classes: number of classes ``K``; class ids are ``0..K-1``.
        names: class names, index = class id; default ``"0"``, ``"1"``, ...
        max_dets: predictions kept per image and class, highest scores first (COCO: 100).

    Returns:
        :class:`DetectionMetrics`.

    Raises:
        ValueError: predictions for an image that is not in ``gt``, class ids out of range,
            or bad ``names`` / ``max_dets``.
    """
    names_t = class_names(num_classes, names)
    if max_dets < 1:
        raise ValueError(f"max_dets must be >= 1, got {max_dets}")
    unknown = [image_id for image_id in preds if image_id not in gt]
    if unknown:
        raise ValueError(
            f"predictions for {len(unknown)} image(s) not in the ground truth, e.g. {unknown[0]!r}"
        )
    image_ids = sorted(gt)
    g = _ground_truth_table(gt, image_ids, num_classes)
    d = _prediction_table(preds, image_ids, num_classes, max_dets)
    num_gt = np.bincount(g.key[~g.ignore] % num_classes, minlength=num_classes).astype(np.int64)
    matched, matched_ignored = _match(g, d, IOU_THRESHOLDS)
    ignored = matched_ignored | (~matched & _out_of_range(d.boxes)[None, :])
    precision, recall, scores, ranked = _accumulate(d, matched, ignored, num_gt)
    threshold, class_p, class_r = _best_f1(ranked, num_gt)
    from edgecnn.metrics.detection_confusion import detection_confusion_matrix  # it imports this module

    return DetectionMetrics(
        names=names_t,
        max_dets=max_dets,
        num_images=len(image_ids),
        iou_thresholds=IOU_THRESHOLDS.copy(),
        recall_thresholds=RECALL_THRESHOLDS.copy(),
        precision=precision,
        recall=recall,
        scores=scores,
        num_gt=num_gt,
        score_threshold=threshold,
        class_precision=class_p,
        class_recall=class_r,
        confusion=detection_confusion_matrix(gt, preds, num_classes, threshold),
    )


def _best_f1(
    ranked: Mapping[int, tuple[np.ndarray, np.ndarray]], num_gt: np.ndarray
) -> tuple[float | None, np.ndarray, np.ndarray]:
    """Score threshold maximising the macro F1 at IoU 0.5, and per-class precision / recall there.

    ``ranked[k]`` holds class ``k``'s counted predictions, scores descending, and the
    cumulative true-positive count along them. With ``n`` predictions kept and ``G`` boxes,
    F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (n + G).
    """
    class_p = np.full(len(num_gt), np.nan)
    class_r = np.full(len(num_gt), np.nan)
    class_p[num_gt > 0] = 0.0
    class_r[num_gt > 0] = 0.0
    all_scores = [s for s, _ in ranked.values() if s.size]
    if not all_scores:
        return None, class_p, class_r
    candidates = np.unique(np.concatenate(all_scores))[::-1]

    def counts(k: int, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, ctp = ranked[k]
        n = np.searchsorted(-s, -thresholds, side="right")  # predictions with score >= threshold
        tp = ctp[np.maximum(n - 1, 0)] * (n > 0) if ctp.size else np.zeros(n.size, dtype=np.int64)
        return tp.astype(float), n.astype(float)

    # Each class's F1 is a step function of the threshold that changes only at its own
    # scores: sum the steps in O(N log N), then settle near-ties with an exact evaluation so
    # that rounding in the running sum cannot pick the wrong threshold.
    steps = np.zeros(candidates.size)
    for k, (s, _) in ranked.items():
        if s.size:
            last_of_run = np.r_[s[1:] != s[:-1], True]
            tp, n = counts(k, s[last_of_run])
            f1 = 2 * tp / (n + num_gt[k])
            steps[np.searchsorted(-candidates, -s[last_of_run])] += np.diff(f1, prepend=0.0)
    approx = np.cumsum(steps)
    near = candidates[approx >= approx.max() - 1e-9]
    exact = np.zeros(near.size)
    for k in ranked:
        tp, n = counts(k, near)
        exact += 2 * tp / (n + num_gt[k])
    best = float(near[int(np.argmax(exact))])
    for k in ranked:
        tp, n = counts(k, np.array([best]))
        class_p[k] = tp[0] / n[0] if n[0] else 0.0
        class_r[k] = tp[0] / num_gt[k]
    return best, class_p, class_r


_RESULT_KEYS = ("image_id", "category_id", "bbox", "score")


def predictions_from_coco_results(
    results: Sequence[Mapping[str, Any]], category_to_class: Mapping[int, int]
) -> dict[int, Predictions]:
    """Group a COCO results list into :class:`Predictions` per image id.

    Args:
        results: entries ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` as in
            a COCO results JSON file (extra keys are allowed and ignored).
        category_to_class: COCO category id -> class id ``0..K-1``.

    Returns:
        ``{image_id: Predictions}`` with boxes converted to ``xyxy``; the order of the
        entries within an image is kept (it breaks ties between equal scores, as in
        pycocotools). Images without entries are absent.

    Raises:
        ValueError: naming the index of the first malformed entry (not an object, missing
            key, bbox not four finite numbers, negative width or height, score not a finite
            number, image_id not an integer, unknown category_id).
    """
    grouped: dict[int, list[tuple[list[float], float, int]]] = {}
    for i, entry in enumerate(results):
        where = f"result {i}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
        missing = [key for key in _RESULT_KEYS if key not in entry]
        if missing:
            raise ValueError(f"{where}: missing key {missing[0]!r}")
        image_id, category_id = entry["image_id"], entry["category_id"]
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise ValueError(f"{where}: image_id must be an integer, got {image_id!r}")
        if (
            isinstance(category_id, bool)
            or not isinstance(category_id, int)
            or (category_id not in category_to_class)
        ):
            known = ", ".join(str(c) for c in sorted(category_to_class))
            raise ValueError(f"{where}: unknown category_id {category_id!r} (known: {known})")
        bbox = entry["bbox"]
        if (
            not isinstance(bbox, Sequence)
            or isinstance(bbox, str)
            or len(bbox) != 4
            or not all(_is_finite_number(v) for v in bbox)
        ):
            raise ValueError(f"{where}: bbox must be four finite numbers [x, y, w, h], got {bbox!r}")
        if bbox[2] < 0:
            raise ValueError(f"{where}: negative width {bbox[2]} in bbox {list(bbox)}")
        if bbox[3] < 0:
            raise ValueError(f"{where}: negative height {bbox[3]} in bbox {list(bbox)}")
        score = entry["score"]
        if not _is_finite_number(score):
            raise ValueError(f"{where}: score must be a finite number, got {score!r}")
        grouped.setdefault(image_id, []).append(
            ([float(v) for v in bbox], float(score), category_to_class[category_id])
        )
    out = {}
    for image_id, rows in grouped.items():
        boxes, scores, classes = zip(*rows, strict=True)
        out[image_id] = Predictions(
            boxes=xywh_to_xyxy(np.array(boxes, dtype=np.float64)),
            scores=np.array(scores, dtype=np.float64),
            class_ids=np.array(classes, dtype=np.int64),
        )
    return out


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
