"""Decode raw YOLO head outputs into boxes and class scores, and encode boxes back.

The layouts are those of the model spec (:mod:`edgecnn.runtime.spec`): ``yolo_v2`` has one
scale, ``yolo_v3`` several. Each scale is a raw float tensor ``(1, H, W, A * (5 + C))``
(quantised outputs are dequantised by the runtime first); per anchor the channels are
``tx, ty, tw, th, objectness, class...``. With ``cx, cy`` the cell column and row, ``s`` the
stride and ``(aw, ah)`` the anchor in input pixels::

    box centre = ((k * sigmoid(tx) - (k - 1) / 2 + cx) * s_x, (k * sigmoid(ty) - (k - 1) / 2 + cy) * s_y)
    box size   = (aw * exp(tw), ah * exp(th))
    confidence = sigmoid(objectness) * class probability

``k`` is ``OutputSpec.xy_scale`` (YOLOv4's ``scale_x_y``): 1 is the classic YOLOv2/v3 decoding,
whose centres stay inside their cell; edgecnn's detectors use 2, so a cell's boxes reach half a
cell beyond it and the neighbouring cells can learn a box too (YOLOv5's assignment).

The class probability applies ``OutputSpec.class_activation``: ``softmax`` over the classes
(the usual ``yolo_v2`` head), ``sigmoid`` per class (``yolo_v3``), or ``none`` (the channels
already hold probabilities). Outputs are matched to the spec's scales by grid size,
``ceil(input / stride)`` on each axis, so they may come in any order; the stride used for
decoding is ``input / grid`` on each axis (the spec's stride when the input size is a
multiple of it).

:func:`encode_yolo` is the inverse: it writes boxes into raw tensors that decode back to them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.runtime.spec import OutputSpec

__all__ = ["decode_yolo", "encode_yolo"]

_EDGE = 1e-6  # keeps encoded centre offsets inside (0, 1), where the logit is finite


def decode_yolo(
    outputs: Sequence[np.ndarray],
    output: OutputSpec,
    input_width: int,
    input_height: int,
    num_classes: int,
    min_objectness: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every anchor of every scale into a box and per-class confidences.

    Args:
        outputs: one raw tensor per scale, ``(1, H, W, A * (5 + C))`` or ``(H, W, ...)``,
            float, in any order.
        output: the model spec's output section (layout, anchors, strides, activation).
        input_width: model input width in pixels.
        input_height: model input height in pixels.
        num_classes: number of classes ``C``.
        min_objectness: if given, only anchors whose objectness (after the sigmoid) is
            greater than this are decoded. Confidence is objectness times a class
            probability of at most 1, so passing the confidence threshold here loses no
            detection and skips most of the work. Default None (decode every anchor).

    Returns:
        ``boxes_xyxy`` ``(N, 4)`` float32 corners in input pixels and ``class_scores``
        ``(N, C)`` float32 confidences (objectness x class probability). Rows run scale by
        scale (ascending stride), then row, column and anchor.

    Raises:
        ModelError: the outputs do not fit the spec (count, grid sizes or channels).
    """
    if output.layout not in ("yolo_v2", "yolo_v3"):
        raise ValueError(f"decode_yolo needs a yolo layout, got {output.layout!r}")
    boxes = []
    scores = []
    for raw, anchors, stride_x, stride_y in _match_scales(
        outputs, output, input_width, input_height, num_classes
    ):
        b, s = _decode_scale(
            raw,
            anchors,
            stride_x,
            stride_y,
            num_classes,
            output.class_activation,
            min_objectness,
            output.xy_scale,
        )
        boxes.append(b)
        scores.append(s)
    if len(boxes) == 1:
        return boxes[0], scores[0]
    return np.concatenate(boxes), np.concatenate(scores)


def encode_yolo(
    boxes_xyxy: np.ndarray,
    class_ids: np.ndarray,
    output: OutputSpec,
    input_width: int,
    input_height: int,
    num_classes: int,
    objectness: float = 0.999,
    background: float = 1e-4,
) -> list[np.ndarray]:
    """Write boxes into raw head tensors that :func:`decode_yolo` turns back into them.

    Each box goes to the anchor, over all scales, whose size best matches its own (IoU of
    centred boxes, the YOLOv3 rule), in the cell holding its centre. If two boxes land on
    the same scale, cell and anchor, the later one wins.

    Args:
        boxes_xyxy: ``(N, 4)`` corners in input pixels, positive width and height, centres
            inside the input.
        class_ids: ``(N,)`` integer classes in ``0 .. num_classes - 1``.
        output: the model spec's output section.
        input_width: model input width in pixels.
        input_height: model input height in pixels.
        num_classes: number of classes ``C``.
        objectness: objectness (after the sigmoid) of anchors holding a box. Default 0.999.
        background: objectness of every other anchor, and the probability of a box's other
            classes (their sum, for softmax). Default 1e-4.

    Returns:
        One ``(1, H, W, A * (5 + C))`` float32 tensor per scale, in the spec's stride order.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    cls = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    if cls.size != boxes.shape[0]:
        raise ValueError(f"got {boxes.shape[0]} boxes and {cls.size} class ids")
    if cls.size and (cls.min() < 0 or cls.max() >= num_classes):
        raise ValueError(f"class ids must be in 0..{num_classes - 1}")
    wh = boxes[:, 2:] - boxes[:, :2]
    if (wh <= 0).any():
        raise ValueError("boxes need a positive width and height")
    centre = boxes[:, :2] + wh / 2
    k = output.xy_scale
    grids = [(_grid(input_height, s), _grid(input_width, s)) for s in output.strides]
    tensors = [
        np.zeros((h, w, len(a), 5 + num_classes), dtype=np.float32)
        for (h, w), a in zip(grids, output.anchors, strict=True)
    ]
    on_cls, off_cls = _class_channel_values(output.class_activation, num_classes, background)
    for t in tensors:
        t[..., 4] = _logit(background)
        t[..., 5:] = off_cls
    # Best anchor over all scales by the IoU of boxes and anchors sharing a centre.
    flat = [(i, j, anchor) for i, anchors in enumerate(output.anchors) for j, anchor in enumerate(anchors)]
    anchor_wh = np.array([anchor for _, _, anchor in flat], dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(wh[:, None, :], anchor_wh[None]).prod(axis=2)
    iou = inter / (wh.prod(axis=1)[:, None] + anchor_wh.prod(axis=1)[None] - inter)
    for box, best in enumerate(iou.argmax(axis=1) if len(cls) else []):
        scale, a, (aw, ah) = flat[best]
        (gh, gw), t = grids[scale], tensors[scale]
        sx, sy = input_width / gw, input_height / gh
        fx, fy = centre[box, 0] / sx, centre[box, 1] / sy
        col = min(max(math.floor(fx), 0), gw - 1)
        row = min(max(math.floor(fy), 0), gh - 1)
        cell = t[row, col, a]
        cell[0] = _logit(min(max((fx - col + (k - 1) / 2) / k, _EDGE), 1 - _EDGE))
        cell[1] = _logit(min(max((fy - row + (k - 1) / 2) / k, _EDGE), 1 - _EDGE))
        cell[2] = math.log(wh[box, 0] / aw)
        cell[3] = math.log(wh[box, 1] / ah)
        cell[4] = _logit(objectness)
        cell[5:] = off_cls
        cell[5 + cls[box]] = on_cls
    return [t.reshape(1, t.shape[0], t.shape[1], -1) for t in tensors]


def _grid(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _class_channel_values(activation: str, num_classes: int, background: float) -> tuple[float, float]:
    """Raw values of a box's own class and of the other classes."""
    if activation == "none":
        return 1.0, background
    if activation == "sigmoid":
        return _logit(1.0 - background), _logit(background)
    # softmax: the own class gets 1 - background, the other classes share background
    return math.log((1.0 - background) * max(num_classes - 1, 1) / background), 0.0


def _match_scales(
    outputs: Sequence[np.ndarray], output: OutputSpec, input_width: int, input_height: int, num_classes: int
) -> list[tuple[np.ndarray, tuple[tuple[float, float], ...], float, float]]:
    """Pair each spec scale (ascending stride) with its output tensor, matched by grid size."""
    if len(outputs) != len(output.strides):
        raise ModelError(f"{output.layout} spec has {len(output.strides)} scales, got {len(outputs)} outputs")
    by_grid = {}
    for raw in outputs:
        arr = np.asarray(raw)
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 3:
            raise ModelError(f"a yolo output must be (1, H, W, channels), got shape {np.shape(raw)}")
        by_grid[arr.shape[:2]] = arr
    matched = []
    for stride, anchors in zip(output.strides, output.anchors, strict=True):
        grid = (_grid(input_height, stride), _grid(input_width, stride))
        arr = by_grid.get(grid)
        want = len(anchors) * (5 + num_classes)
        if arr is None or arr.shape[2] != want:
            shapes = ", ".join(str(tuple(np.shape(o))) for o in outputs)
            raise ModelError(
                f"outputs {shapes} do not fit the spec: stride {stride} needs a {grid[0]}x{grid[1]}x{want} "
                f"tensor ({len(anchors)} anchors x (5 + {num_classes} classes))"
            )
        if not np.issubdtype(arr.dtype, np.floating):
            raise ModelError(f"yolo outputs must be dequantised floats, got {arr.dtype}")
        anchor_key = tuple((float(w), float(h)) for w, h in anchors)
        matched.append((arr, anchor_key, input_width / grid[1], input_height / grid[0]))
    return matched


@lru_cache(maxsize=16)
def _cell_geometry(
    height: int, width: int, anchors: tuple[tuple[float, float], ...], stride_x: float, stride_y: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per anchor row (row, column, anchor order): cell corner in pixels, anchor size, stride."""
    count = len(anchors)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    corner = np.stack([cols * stride_x, rows * stride_y], axis=-1).astype(np.float32)
    corner = np.repeat(corner.reshape(-1, 1, 2), count, axis=1).reshape(-1, 2)
    size = np.tile(np.asarray(anchors, dtype=np.float32), (height * width, 1))
    stride = np.array([stride_x, stride_y], dtype=np.float32)
    for arr in (corner, size, stride):
        arr.flags.writeable = False
    return corner, size, stride


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = np.exp(-x)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


def _decode_scale(
    raw: np.ndarray,
    anchors: tuple[tuple[float, float], ...],
    stride_x: float,
    stride_y: float,
    num_classes: int,
    activation: str,
    min_objectness: float | None,
    xy_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    height, width = raw.shape[:2]
    rows = np.ascontiguousarray(raw, dtype=np.float32).reshape(-1, 5 + num_classes)
    corner, size, stride = _cell_geometry(height, width, anchors, stride_x, stride_y)
    obj = _sigmoid(rows[:, 4])
    if min_objectness is not None:
        keep = (obj > min_objectness).nonzero()[0]
        rows = rows.take(keep, axis=0)
        corner = corner.take(keep, axis=0)
        size = size.take(keep, axis=0)
        obj = obj.take(keep)
    centre = _sigmoid(rows[:, 0:2])
    if xy_scale != 1.0:
        centre *= np.float32(xy_scale)
        centre -= np.float32((xy_scale - 1) / 2)
    centre *= stride
    centre += corner
    with np.errstate(over="ignore"):
        half = np.exp(rows[:, 2:4])
    half *= size
    half *= 0.5
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    scores = _class_probabilities(rows[:, 5:], activation)
    scores *= obj[:, None]
    return boxes, scores


def _class_probabilities(logits: np.ndarray, activation: str) -> np.ndarray:
    if activation == "sigmoid":
        return _sigmoid(logits)
    if activation == "softmax":
        shifted = logits - logits.max(axis=1, keepdims=True)
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=1, keepdims=True)
        return shifted
    if activation == "none":
        return logits.copy()
    raise ValueError(f"unknown class activation {activation!r}")
