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

The anchor-free layouts of Ultralytics exports hold boxes that the model decoded itself, in
one tensor:

* ``yolo_v8`` (YOLOv8, YOLO11 and the other one-to-many heads): ``(1, 4 + C, N)``, per
  candidate ``cx, cy, w, h`` then C class scores (already sigmoids: ``class_activation``
  ``none``). The orientation comes from the shape: ``(1, N, 4 + C)`` (some converters) is
  read as well; when both axes are ``4 + C`` it is Ultralytics' own ``(1, 4 + C, N)``.
* ``yolo_end2end`` (YOLOv10, YOLO26, ``nms=True`` exports): ``(1, K, 6)``, rows ``x1, y1, x2,
  y2, score, class id``; zero rows pad it to K. Rows whose class id is not a label are dropped.

Their box units are read from the values, every call: Ultralytics' TFLite exports give
fractions of the input width and height, other converters input pixels. The candidates of a
real head cover the whole input (a YOLOv8 head has one centred on every cell), so in pixels
the largest coordinate is near the input size, while fractions stay about 0..1. Boxes whose
largest centre coordinate (``yolo_v8``) or corner (``yolo_end2end``) is above
:data:`NORMALISED_LIMIT` (2.0) are taken as pixels, the others as fractions and scaled by
the input size.

:func:`encode_yolo` is the inverse for the anchor layouts: it writes boxes into raw tensors
that decode back to them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.runtime.spec import ANCHOR_FREE_LAYOUTS, ANCHOR_LAYOUTS, OutputSpec

__all__ = ["NORMALISED_LIMIT", "decode_yolo", "encode_yolo"]

_EDGE = 1e-6  # keeps encoded centre offsets inside (0, 1), where the logit is finite

#: Anchor-free boxes whose largest centre (or corner) coordinate is at most this are fractions of
#: the input size; above it, input pixels (see the module docstring).
NORMALISED_LIMIT = 2.0


def decode_yolo(
    outputs: Sequence[np.ndarray],
    output: OutputSpec,
    input_width: int,
    input_height: int,
    num_classes: int,
    min_objectness: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every anchor of every scale (every candidate, for the anchor-free layouts) into a
    box and per-class confidences.

    Args:
        outputs: ``yolo_v2`` / ``yolo_v3``: one raw tensor per scale, ``(1, H, W, A * (5 + C))``
            or ``(H, W, ...)``, float, in any order. ``yolo_v8``: one ``(1, 4 + C, N)`` or
            ``(1, N, 4 + C)`` tensor; ``yolo_end2end``: one ``(1, K, 6)`` tensor (the batch
            axis may be omitted).
        output: the model spec's output section (layout, anchors, strides, activation).
        input_width: model input width in pixels.
        input_height: model input height in pixels.
        num_classes: number of classes ``C``.
        min_objectness: if given, only anchors whose objectness (after the sigmoid) is
            greater than this are decoded. Confidence is objectness times a class
            probability of at most 1, so passing the confidence threshold here loses no
            detection and skips most of the work. For the anchor-free layouts, which have
            no objectness, the best class score (after the activation) of a candidate must
            be greater. Default None (decode every anchor).

    Returns:
        ``boxes_xyxy`` ``(N, 4)`` float32 corners in input pixels and ``class_scores``
        ``(N, C)`` float32 confidences (objectness x class probability; for ``yolo_end2end``
        the row's score in its class's column, 0 elsewhere). Rows run scale by scale
        (ascending stride), then row, column and anchor; anchor-free rows keep the output's
        order.

    Raises:
        ModelError: the outputs do not fit the spec (count, grid sizes or channels).
    """
    if output.layout in ANCHOR_FREE_LAYOUTS:
        rows = _single_output(outputs, output.layout)
        if output.layout == "yolo_v8":
            return _decode_v8(
                rows, input_width, input_height, num_classes, output.class_activation, min_objectness
            )
        return _decode_end2end(
            rows, input_width, input_height, num_classes, output.class_activation, min_objectness
        )
    if output.layout not in ANCHOR_LAYOUTS:
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

    Raises:
        ValueError: an anchor-free layout (those models decode their boxes themselves), or
            invalid boxes or class ids.
    """
    if output.layout not in ANCHOR_LAYOUTS:
        raise ValueError(f"encode_yolo needs an anchor layout (yolo_v2, yolo_v3), got {output.layout!r}")
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


def _single_output(outputs: Sequence[np.ndarray], layout: str) -> np.ndarray:
    """The one output of an anchor-free head as a 2-D float32 array (batch axis dropped)."""
    if len(outputs) != 1:
        raise ModelError(f"a {layout} head has one output, got {len(outputs)}")
    arr = np.asarray(outputs[0])
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ModelError(f"a {layout} output must be (1, rows, columns), got shape {np.shape(outputs[0])}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ModelError(f"yolo outputs must be dequantised floats, got {arr.dtype}")
    return np.asarray(arr, dtype=np.float32)


def _to_input_pixels(boxes: np.ndarray, largest: float, width: int, height: int) -> np.ndarray:
    """Scale boxes given as fractions of the input to input pixels (in place); pixel boxes,
    told by ``largest`` above :data:`NORMALISED_LIMIT`, stay as they are."""
    if not largest > NORMALISED_LIMIT:
        boxes *= np.array([width, height, width, height], dtype=np.float32)
    return boxes


def _decode_v8(
    arr: np.ndarray,
    width: int,
    height: int,
    num_classes: int,
    activation: str,
    min_score: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(4 + C, N)`` or ``(N, 4 + C)`` rows of ``cx, cy, w, h, scores...`` to corners and scores."""
    channels = 4 + num_classes
    if arr.shape[0] == channels:  # Ultralytics' own (4 + C, N); also when both axes are 4 + C
        arr = arr.T
    elif arr.shape[1] != channels:
        raise ModelError(
            f"a yolo_v8 output with {num_classes} classes is (1, {channels}, N) or (1, N, {channels}), "
            f"got (1, {arr.shape[0]}, {arr.shape[1]})"
        )
    largest = float(arr[:, :2].max()) if len(arr) else 0.0
    scores = arr[:, 4:]
    if activation == "softmax":
        scores = _class_probabilities(np.ascontiguousarray(scores), activation)
    if min_score is not None:
        best = scores.max(axis=1)
        if activation == "sigmoid":
            best = _sigmoid(best)  # monotonic: the best logit gives the best probability
        keep = (best > min_score).nonzero()[0]
        arr, scores = arr.take(keep, axis=0), scores.take(keep, axis=0)
    if activation == "sigmoid":
        scores = _sigmoid(scores)
    elif activation == "none":
        scores = np.array(scores, dtype=np.float32)  # a contiguous copy, not a view of the output
    centre, half = arr[:, 0:2], arr[:, 2:4] * np.float32(0.5)
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    return _to_input_pixels(boxes, largest, width, height), scores


def _decode_end2end(
    arr: np.ndarray,
    width: int,
    height: int,
    num_classes: int,
    activation: str,
    min_score: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(K, 6)`` rows of ``x1, y1, x2, y2, score, class id`` to corners and a score matrix."""
    if arr.shape[1] != 6:
        raise ModelError(
            f"a yolo_end2end output is (1, K, 6): x1, y1, x2, y2, score, class; got (1, {arr.shape[0]}, "
            f"{arr.shape[1]})"
        )
    largest = float(arr[:, 2:4].max()) if len(arr) else 0.0
    score = arr[:, 4]
    if activation == "sigmoid":
        score = _sigmoid(score)
    elif activation != "none":
        raise ValueError(f"yolo_end2end rows take class_activation sigmoid or none, got {activation!r}")
    with np.errstate(invalid="ignore"):
        class_id = np.rint(arr[:, 5])
        keep = (class_id >= 0) & (class_id < num_classes)
        if min_score is not None:
            keep &= score > min_score
    rows = keep.nonzero()[0]
    boxes = np.ascontiguousarray(arr[rows, 0:4])
    scores = np.zeros((len(rows), num_classes), dtype=np.float32)
    scores[np.arange(len(rows)), class_id[rows].astype(np.int64)] = score[rows]
    return _to_input_pixels(boxes, largest, width, height), scores
