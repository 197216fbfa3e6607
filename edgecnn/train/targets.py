"""YOLO target assignment in numpy: one image's boxes to per-scale, per-anchor training targets.

Runs per sample as the ``target_fn`` of :func:`edgecnn.data.pipeline.make_dataset`, in the
parallel numpy stage of ``tf.data``, so the loss (:mod:`edgecnn.train.losses`) stays a pure
TensorFlow function of ``(targets, raw outputs)``.

Assignment (the grid and anchors are those of the model spec, see :mod:`edgecnn.runtime.spec`):

1. **Best anchor** (YOLOv3): every box goes to the anchor, over *all* scales, whose size fits
   its own best (IoU of the two sizes placed at the same corner), in the cell of that scale
   holding the box centre.
2. **Extra anchors** (Ultralytics' ``anchor_t``, optional): every other anchor whose width and
   height ratios to the box are both within ``1 / anchor_t .. anchor_t`` also takes the box,
   in the cell holding the centre at its own scale. More positives per box train faster;
   NMS removes the duplicates at inference. ``anchor_t=None`` keeps the best anchor only.
3. **Neighbouring cells** (YOLOv5): the spec decodes ``centre = (k * sigmoid(t) - (k - 1) / 2
   + cell) * stride`` with ``k = xy_scale``, so a cell reaches ``r = (k - 1) / 2`` of a cell
   beyond its edges. Every claim of rules 1 and 2 is repeated in the left (right) neighbour
   when the centre lies within ``r`` of the cell's left (right) edge, and likewise up and
   down: with ``k = 2``, the two nearest neighbours, three cells per anchor. ``k = 1``
   (classic YOLOv2/v3) uses the centre cell only.
4. **Collisions**: a slot (scale, cell, anchor) holds one box. Centre-cell claims win over
   neighbour claims, then best-anchor claims over extra-anchor claims; within each kind,
   smaller boxes win over larger ones (a large box has more anchors and cells that fit it).

Per scale with stride ``s`` the target tensor is ``(H, W, A, 6)`` float32 with ``H = ceil(
input_height / s)``: ``x1, y1, x2, y2`` of the assigned box in input pixels, objectness
(1 for positives, 0 otherwise) and the class id (-1 where there is no box). The key is
``targets_s{stride}``. A ``boxes`` entry ``(max_boxes, 4)`` carries every ground-truth box
(zero-padded) for the loss's ignore mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgecnn.runtime.spec import OutputSpec

#: Default Ultralytics anchor-ratio threshold for extra positives (``anchor_t`` in hyp.yaml).
ANCHOR_T = 4.0
#: Ground-truth boxes kept per image for the ignore mask.
MAX_BOXES = 100
#: Channels per anchor in a target tensor: x1, y1, x2, y2, objectness, class id.
TARGET_CHANNELS = 6


def target_key(stride: int) -> str:
    """The ``y_true`` key of the targets at ``stride`` (``targets_s16``)."""
    return f"targets_s{stride}"


def grid_size(input_width: int, input_height: int, stride: int) -> tuple[int, int]:
    """``(rows, columns)`` of a scale's grid, as :func:`edgecnn.postprocess.decode_yolo` computes it."""
    return math.ceil(input_height / stride), math.ceil(input_width / stride)


def _wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


def build_targets(
    boxes: np.ndarray,
    classes: np.ndarray,
    output: OutputSpec,
    input_width: int,
    input_height: int,
    anchor_t: float | None = ANCHOR_T,
    max_boxes: int = MAX_BOXES,
    min_size: float = 1.0,
) -> dict[str, np.ndarray]:
    """Assign one image's boxes to anchors (rules in the module docstring).

    Args:
        boxes: ``(N, 4)`` xyxy boxes in input pixels (after letterbox and augmentation).
        classes: ``(N,)`` class ids.
        output: the spec's output section (anchors per scale in input pixels, strides).
        input_width: model input width in pixels.
        input_height: model input height in pixels.
        anchor_t: extra positives for anchors within this size ratio; None: best anchor only.
        max_boxes: ground-truth boxes kept (first ones) in the ``boxes`` entry.
        min_size: boxes narrower or shorter than this many pixels are not assigned.

    Returns:
        ``{targets_s{stride}: (H, W, A, 6) float32, ..., "boxes": (max_boxes, 4) float32}``.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1).astype(np.int64)
    gt = np.zeros((max_boxes, 4), np.float32)
    kept = boxes[:max_boxes]
    gt[: len(kept)] = kept
    out: dict[str, np.ndarray] = {}
    grids = []
    for stride, anchors in zip(output.strides, output.anchors, strict=True):
        rows, cols = grid_size(input_width, input_height, stride)
        t = np.zeros((rows, cols, len(anchors), TARGET_CHANNELS), np.float32)
        t[..., 5] = -1.0
        out[target_key(stride)] = t
        grids.append((t, input_width / cols, input_height / rows, cols, rows))
    out["boxes"] = gt

    wh = boxes[:, 2:] - boxes[:, :2]
    valid = (wh >= min_size).all(axis=1)
    if not valid.any():
        return out
    boxes, classes, wh = boxes[valid], classes[valid], wh[valid].astype(np.float64)
    flat = [(i, j) for i, scale in enumerate(output.anchors) for j in range(len(scale))]
    anchor_wh = np.array([output.anchors[i][j] for i, j in flat], np.float64).reshape(-1, 2)
    best = _wh_iou(wh, anchor_wh).argmax(axis=1)
    claims = []  # (kind: 0 extra, 1 best; box; flat anchor)
    if anchor_t is not None:
        ratio = wh[:, None, :] / anchor_wh[None]
        fits = np.maximum(ratio, 1 / ratio).max(axis=2) < anchor_t
        for b, k in zip(*np.nonzero(fits), strict=True):
            if k != best[b]:
                claims.append((0, b, int(k)))
    claims.extend((1, b, int(best[b])) for b in range(len(boxes)))
    area = wh.prod(axis=1)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    reach = (output.xy_scale - 1) / 2
    writes = []  # (centre cell?, kind, -area, box, scale, row, col, anchor)
    for kind, b, k in claims:
        scale, a = flat[k]
        _, sx, sy, cols, rows = grids[scale]
        fx, fy = centre[b, 0] / sx, centre[b, 1] / sy
        col = min(max(int(fx), 0), cols - 1)
        row = min(max(int(fy), 0), rows - 1)
        writes.append((1, kind, -area[b], b, scale, row, col, a))
        for dr, dc in _neighbours(fx - col, fy - row, reach):
            if 0 <= row + dr < rows and 0 <= col + dc < cols:
                writes.append((0, kind, -area[b], b, scale, row + dr, col + dc, a))
    # Later writes win: neighbour cells first, then extra claims before best claims, larger boxes
    # before smaller ones.
    writes.sort(key=lambda w: w[:3])
    for *_, b, scale, row, col, a in writes:
        t = grids[scale][0]
        t[row, col, a, :4] = boxes[b]
        t[row, col, a, 4] = 1.0
        t[row, col, a, 5] = classes[b]
    return out


def _neighbours(fx: float, fy: float, reach: float) -> list[tuple[int, int]]:
    """``(d_row, d_col)`` of the neighbouring cells that can still reach a centre at fraction
    ``(fx, fy)`` of its own cell when a cell's boxes reach ``reach`` cells beyond its edges."""
    if reach <= 0:
        return []
    cells = []
    if fx < reach:
        cells.append((0, -1))
    if fx > 1 - reach:
        cells.append((0, 1))
    if fy < reach:
        cells.append((-1, 0))
    if fy > 1 - reach:
        cells.append((1, 0))
    return cells


class YoloTargetFn:
    """The pipeline's ``target_fn`` for a detector: :func:`build_targets` with fixed settings.

    A plain picklable object (not a closure), so a ``tf.data`` map can call it from any thread.

    Args:
        output: the spec's output section.
        input_width: model input width in pixels.
        input_height: model input height in pixels.
        anchor_t: see :func:`build_targets`.
        max_boxes: see :func:`build_targets`.

    Example:
        >>> fn = YoloTargetFn(spec.output, 160, 160)  # doctest: +SKIP
        >>> ds = make_dataset(split, spec.input, target_fn=fn)  # doctest: +SKIP
    """

    def __init__(
        self,
        output: OutputSpec,
        input_width: int,
        input_height: int,
        anchor_t: float | None = ANCHOR_T,
        max_boxes: int = MAX_BOXES,
    ) -> None:
        self.output = output
        self.input_width = input_width
        self.input_height = input_height
        self.anchor_t = anchor_t
        self.max_boxes = max_boxes

    def __call__(self, boxes: np.ndarray, classes: np.ndarray) -> dict[str, np.ndarray]:
        """The training targets of one image (see :func:`build_targets`)."""
        return build_targets(
            boxes,
            classes,
            self.output,
            self.input_width,
            self.input_height,
            anchor_t=self.anchor_t,
            max_boxes=self.max_boxes,
        )

    @property
    def keys(self) -> list[str]:
        """The target keys in scale order, then ``boxes``."""
        return [target_key(s) for s in self.output.strides] + ["boxes"]


def assigned_boxes(targets: dict[str, np.ndarray], strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Every positive slot's box and class, scale by scale (for tests and debugging).

    Returns:
        ``(boxes (P, 4) float32, classes (P,) int64)``.
    """
    boxes, classes = [], []
    for stride in strides:
        t = targets[target_key(stride)].reshape(-1, TARGET_CHANNELS)
        pos = t[:, 4] > 0
        boxes.append(t[pos, :4])
        classes.append(t[pos, 5].astype(np.int64))
    return np.concatenate(boxes), np.concatenate(classes)
