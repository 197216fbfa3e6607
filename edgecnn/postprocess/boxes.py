"""Box format converters and IoU, on ``(N, 4)`` float arrays.

Formats: ``xyxy`` (corners), ``xywh`` (top-left corner and size, COCO), ``cxcywh``
(centre and size, YOLO). Pixel boxes have no "+1": a box from 0 to 10 is 10 wide.
"""

from __future__ import annotations

import numpy as np


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64 if np.asarray(boxes).dtype == np.float64 else np.float32)
    return arr.reshape(-1, 4)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Corners to top-left corner plus width and height."""
    b = _as_boxes(boxes)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Top-left corner plus width and height to corners."""
    b = _as_boxes(boxes)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """Corners to centre plus width and height."""
    b = _as_boxes(boxes)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w, h], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Centre plus width and height to corners."""
    b = _as_boxes(boxes)
    half_w = b[:, 2] / 2
    half_h = b[:, 3] / 2
    return np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1)


def scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Multiply x coordinates by ``sx`` and y coordinates by ``sy`` (normalised <-> pixels)."""
    b = _as_boxes(boxes).copy()
    b[:, [0, 2]] *= sx
    b[:, [1, 3]] *= sy
    return b


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip corner boxes to ``[0, width] x [0, height]``."""
    b = _as_boxes(boxes)
    return np.clip(b, 0, np.array([width, height, width, height], dtype=b.dtype))


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of corner boxes (0 for inverted boxes)."""
    b = _as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` between two sets of corner boxes."""
    a = _as_boxes(a)
    b = _as_boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
