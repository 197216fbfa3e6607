"""From decoded boxes and class scores to the detections of a frame.

:func:`filter_detections` runs, in order:

1. best class per box (one label per box, like Ultralytics' ``multi_label=False``);
2. confidence threshold: keep a box when its score is greater than ``conf``, or than its
   class's entry in ``class_conf``;
3. class filter: keep only ``classes``, if given;
4. top-k cap: keep the ``max_nms`` best scores (equal scores: lower index first);
5. NMS per class (:func:`~edgecnn.postprocess.nms.batched_nms`, OpenCV's convention), IoU
   threshold ``iou`` or the class's ``class_iou``; ``agnostic=True`` lets any class
   suppress any other;
6. keep the ``max_det`` best.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edgecnn.postprocess.letterbox import Letterbox
from edgecnn.postprocess.nms import batched_nms

__all__ = ["Detections", "filter_detections"]


@dataclass(frozen=True)
class Detections:
    """Detections of one frame, best score first.

    Attributes:
        boxes: ``(K, 4)`` float32 corners ``x1, y1, x2, y2``.
        scores: ``(K,)`` float32 confidences.
        class_ids: ``(K,)`` int64 class ids.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def to_source(self, transform: Letterbox, clip: bool = True) -> Detections:
        """The same detections with boxes mapped from model-input to source-frame pixels."""
        return Detections(transform.to_source(self.boxes, clip=clip), self.scores, self.class_ids)


def filter_detections(
    boxes_xyxy: np.ndarray,
    class_scores: np.ndarray,
    conf: float = 0.25,
    class_conf: Mapping[int, float] | None = None,
    iou: float = 0.45,
    class_iou: Mapping[int, float] | None = None,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    max_det: int = 300,
    max_nms: int = 30000,
) -> Detections:
    """Threshold, cap and suppress decoded boxes (steps in the module docstring).

    Args:
        boxes_xyxy: ``(N, 4)`` corner boxes.
        class_scores: ``(N, C)`` per-class confidences (``(N,)`` for one class).
        conf: keep boxes whose best score is greater than this. Default 0.25.
        class_conf: per-class confidence thresholds replacing ``conf``. Default None.
        iou: NMS IoU threshold: a box is suppressed when its IoU with a better box of its
            class is greater than this. Default 0.45.
        class_iou: per-class IoU thresholds replacing ``iou`` (not with ``agnostic``).
            Default None.
        classes: keep only these class ids. Default None (all classes).
        agnostic: suppress across classes, as if there were one class. Default False.
        max_det: detections kept after NMS. Default 300.
        max_nms: boxes kept, best scores first, before NMS. Default 30000.

    Returns:
        :class:`Detections`, best score first.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(class_scores, dtype=np.float32)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"got {boxes.shape[0]} boxes and {scores.shape[0]} score rows")
    if max_det < 1 or max_nms < 1:
        raise ValueError("max_det and max_nms must be at least 1")
    if agnostic and class_iou:
        raise ValueError("class_iou needs class-aware NMS (agnostic=False)")
    if boxes.shape[0] == 0 or scores.shape[1] == 0:
        return Detections.empty()
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(scores.shape[0]), class_ids]
    keep = best > _per_box(conf, class_conf, class_ids)
    if classes is not None:
        keep &= np.isin(class_ids, np.asarray(list(classes), dtype=np.int64))
    idx = keep.nonzero()[0]
    if idx.size > max_nms:
        idx = idx.take((-best.take(idx)).argsort(kind="stable")[:max_nms])
    boxes = boxes.take(idx, axis=0)
    best = best.take(idx)
    class_ids = class_ids.take(idx).astype(np.int64)
    nms_classes = np.zeros_like(class_ids) if agnostic else class_ids
    kept = batched_nms(boxes, best, nms_classes, iou, class_iou)[:max_det]
    return Detections(boxes.take(kept, axis=0), best.take(kept), class_ids.take(kept))


def _per_box(
    default: float, table: Mapping[int, float] | None, class_ids: np.ndarray
) -> np.ndarray | np.float32:
    """The float32 threshold of each box: its class's entry in ``table``, else ``default``."""
    if not table:
        return np.float32(default)
    values = np.full(int(class_ids.max()) + 1, default, dtype=np.float32)
    for class_id, value in table.items():
        if 0 <= class_id < values.size:
            values[class_id] = value
    return values.take(class_ids)
