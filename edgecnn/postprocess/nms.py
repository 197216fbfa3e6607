"""Class-aware greedy non-maximum suppression that keeps exactly what OpenCV keeps.

:func:`batched_nms` returns the same indices, in the same order, as
``cv2.dnn.NMSBoxesBatched(xywh, scores, class_ids, score_threshold, iou_threshold)`` with
``xywh = (x1, y1, x2 - x1, y2 - y1)`` in float64 (OpenCV's ``Rect2d`` overload, the one its
Python binding picks for lists of floats) and ``score_threshold`` below every score. OpenCV's
rules, read from ``modules/dnn/src/nms.cpp``, ``nms.inl.hpp`` and ``core/types.hpp``:

* Scores are float32. Boxes are visited in descending score order by a stable sort, so equal
  scores keep their input order (lower index first).
* A box is kept when its overlap with every box kept before it is ``<= iou_threshold``; it is
  suppressed when one overlap is strictly greater.
* Overlap is IoU without "+1" (a box from 0 to 10 is 10 wide), computed in float64 from
  ``x, y, w, h`` and rounded as OpenCV rounds it: ``1.f - (float)(1.0 - inter / union)``,
  compared in float32. Two boxes whose areas sum to at most float64 epsilon overlap 1.0.
* Classes are kept apart by shifting each box by ``class_id * (max_coord + 1)`` on both axes,
  ``max_coord`` being the largest of 0 and every box's ``x, y, x + w, y + h``. IoU is computed
  on the shifted boxes, here too, so that it rounds like OpenCV's to the last bit.

Deliberate differences: when boxes have negative coordinates (or class ids are negative)
OpenCV's shift can make boxes of different classes overlap, and then one suppresses the other;
here boxes of different classes never suppress each other. NaN scores are dropped (OpenCV
skips them too, as ``NaN > threshold`` is false). ``class_iou`` gives classes their own
threshold, as if each class were suppressed on its own with it.

How it is fast in numpy. At detector sizes (about 1000 boxes) the cost is mostly the number
of numpy calls, about a microsecond each, so the work is done in few calls on whole arrays:

* One sort by score, of 64-bit keys (score bits, then the index): unique keys, so numpy's
  unstable SIMD sort gives the stable order, at about half the cost of a stable argsort.
  Each box's fast-layout corners (complex points, classes moved apart), area and search
  window are computed once.
* A pair of boxes can only exceed an IoU threshold ``t`` when their centres are closer along
  x than ``w_a / 2 + (0.5 - t) * max_w`` (``t < 0.5``) or ``(1 - t) * w_a``, so the
  candidates of a box come from a window search in x-sorted centres: one ``searchsorted``
  for all the boxes of a step.
* Up to 64 boxes are solved densely: every pair is tested, then one sequential pass over bit
  masks in Python integers. Larger sets go in blocks of the 128 best undecided boxes: pairs
  inside the block from a window search among its own boxes, one pass, then the block's kept
  boxes suppress the later boxes in their windows (only the boxes after the first block are
  sorted along x), and the next block starts from the best box left.

Every pair test is float64 IoU on whole arrays; a pair within 1e-6 of the threshold is
recomputed in OpenCV's own arithmetic (every pair is, when boxes are so small compared with
their coordinates that float64 rounding could reach that band). Boxes with zero width or
height are settled apart (see ``_with_flat_boxes``); negative sizes go through a plain greedy
loop in OpenCV's arithmetic, one kept box at a time. ``benchmarks/nms.py`` compares the speed
with OpenCV's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

__all__ = ["batched_nms"]

_DBL_EPS = float(np.finfo(np.float64).eps)
_BAND = 1e-6  # pairs whose fast IoU is this close to the threshold are recomputed exactly
_DENSE_MAX = 64  # sets this small test every pair instead of searching windows
_BLOCK = 128  # best undecided boxes resolved together (the bit masks hold 128)
_BITS = [1 << i for i in range(64)]
_INDEX_KEYS = np.arange(4096, dtype=np.uint64)  # the low halves of the score sort's keys
_INDEX_KEYS.flags.writeable = False


def batched_nms(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    class_iou: Mapping[int, float] | None = None,
) -> np.ndarray:
    """Greedy per-class NMS; returns the kept indices in descending score order.

    The result equals ``cv2.dnn.NMSBoxesBatched`` on the same boxes given as float
    ``x, y, w, h`` lists, with a score threshold below every score. See the module docstring
    for the exact convention: IoU without "+1", a box is suppressed when its IoU with a kept
    box of the same class is greater than the threshold, equal scores keep input order.

    Args:
        boxes_xyxy: ``(N, 4)`` corner boxes ``x1, y1, x2, y2``, finite.
        scores: ``(N,)`` scores, compared as float32. NaN scores are dropped.
        class_ids: ``(N,)`` integer class ids; boxes of different classes never suppress
            each other.
        iou_threshold: IoU above which a box is suppressed by a better one of its class
            (0 suppresses any overlap, 1 nothing).
        class_iou: per-class thresholds that replace ``iou_threshold`` for those classes.
            Default None.

    Returns:
        ``(K,)`` int64 indices into the inputs, best score first.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[-1:] != (4,):
        boxes = boxes.reshape(-1, 4)
    s32 = np.asarray(scores, dtype=np.float32)
    if s32.ndim != 1:
        s32 = s32.reshape(-1)
    cls = _as_class_ids(class_ids)
    n = s32.size
    if boxes.shape[0] != n or cls.size != n:
        raise ValueError(f"got {boxes.shape[0]} boxes, {n} scores and {cls.size} class ids")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # One sum finds a non-finite value (or an overflow, then the full check decides).
    if not math.isfinite(np.add.reduce(boxes, axis=None)) and not np.isfinite(boxes).all():
        raise ValueError("box coordinates must be finite")
    order = _descending_order(s32)
    if math.isnan(np.add.reduce(s32)) and np.isnan(s32).any():
        order = order.compress(~np.isnan(s32.take(order)))
        if order.size == 0:
            return np.zeros(0, dtype=np.int64)
    r = _Ranked(boxes, cls, order, iou_threshold, class_iou)
    return order.take(_solve(r)).astype(np.int64, copy=False)


def _solve(r: _Ranked) -> np.ndarray:
    """Kept ranks, ascending."""
    if r.degenerate:
        return _with_flat_boxes(r)
    if r.n <= _DENSE_MAX:
        return _resolve_dense(r, _arange(r.n))
    if r.n <= _BLOCK:
        return _resolve_block(r, _arange(r.n))
    return _greedy_blocks(r)


def _as_class_ids(class_ids: np.ndarray) -> np.ndarray:
    cls = np.asarray(class_ids)
    if cls.ndim != 1:
        cls = cls.reshape(-1)
    if cls.dtype.kind in "iub":
        return cls.astype(np.int64, copy=False)
    as_int = cls.astype(np.int64)
    if not np.array_equal(as_int, cls):
        raise ValueError("class ids must be integers")
    return as_int


def _descending_order(s32: np.ndarray) -> np.ndarray:
    """Indices by descending float32 score, equal scores in input order (a stable sort).

    Each score's bits become an unsigned key that orders as the scores do, descending, and
    the index fills the low 32 bits: unique 64-bit keys, so one unstable (SIMD) sort gives
    the stable order, several times faster than numpy's stable float sort. Scores >= 0 (the
    usual ones) need no sign handling: their bits order as their values (+ 0.0 turns -0.0
    into 0.0). NaN scores sort anywhere; the caller drops them.
    """
    n = s32.size
    if n and s32.min() >= 0.0:  # NaN fails the test
        keys = (np.uint32(0x7FFFFFFF) - (s32 + np.float32(0.0)).view(np.uint32)).astype(np.uint64)
    else:
        bits = (-s32 + np.float32(0.0)).view(np.uint32)
        flip = np.where(bits >> np.uint32(31), np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
        keys = (bits ^ flip).astype(np.uint64)
    keys <<= np.uint64(32)
    keys |= _INDEX_KEYS[:n] if n <= _INDEX_KEYS.size else np.arange(n, dtype=np.uint64)
    keys.sort()
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.intp)


def _thresholds_f32(
    iou_threshold: float, class_iou: Mapping[int, float] | None, cls: np.ndarray
) -> np.ndarray | np.float32:
    """The float32 IoU threshold of each box (or one for all), as OpenCV compares it."""
    values = [iou_threshold, *(class_iou or {}).values()]
    if not all(float(v) >= 0.0 for v in values):  # also rejects NaN
        raise ValueError(f"IoU thresholds must be >= 0, got {values}")
    if not class_iou:
        return np.float32(iou_threshold)
    ids = np.fromiter(class_iou.keys(), dtype=np.int64, count=len(class_iou))
    table = np.fromiter(class_iou.values(), dtype=np.float32, count=len(class_iou))
    sorter = ids.argsort()
    ids = ids.take(sorter)
    table = table.take(sorter)
    pos = ids.searchsorted(cls).clip(max=ids.size - 1)
    return np.where(ids.take(pos) == cls, table.take(pos), np.float32(iou_threshold))


class _Ranked:
    """Per-box arrays in descending score order (index = rank).

    Two frames: the fast test and the window search see boxes of class ``c`` moved by
    ``(c - lowest class) * (2 * extent + 1)`` on both axes, so that boxes of different classes
    are always apart (whatever the signs of coordinates and class ids); the exact test sees
    OpenCV's own shift, computed on first use.
    """

    def __init__(
        self,
        boxes: np.ndarray,
        cls: np.ndarray,
        order: np.ndarray,
        iou_threshold: float,
        class_iou: Mapping[int, float] | None,
    ) -> None:
        n = self.n = order.size
        self.inputs = (boxes, cls, order, iou_threshold, class_iou)
        ranked = boxes.take(order, 0)
        self.cls = cls.take(order)
        # Complex points x + iy, so that one numpy call handles both axes. (Column slices of
        # the (n, 4) array would make numpy loop over rows of 2, several times slower.)
        corners = ranked.view(np.complex128)  # (n, 2): x1 + i*y1, x2 + i*y2
        top_left = corners[:, 0]
        bottom_right = corners[:, 1]
        size = bottom_right - top_left  # w + i*h, OpenCV's width and height
        self.w = size.real
        self.h = size.imag
        self.area = self.w * self.h
        min_side = float(size.view(np.float64).min())
        # Boxes without area overlap in OpenCV's rule even when far apart: no window search.
        self.degenerate = min_side <= 0.0
        self.t32 = _thresholds_f32(iou_threshold, class_iou, self.cls)
        self._opencv_xy: np.ndarray | None = None
        if self.degenerate:
            return
        t = self.t32.astype(np.float64) if isinstance(self.t32, np.ndarray) else float(self.t32)
        k = t / (1.0 + t)  # IoU > t  <=>  inter / (area_a + area_b) > k
        self.k_lo = np.maximum(k - _BAND, 0.0) if isinstance(k, np.ndarray) else max(k - _BAND, 0.0)
        self.k_hi = k + _BAND
        t_min = float(self.t32.min()) if isinstance(self.t32, np.ndarray) else float(self.t32)
        max_w = float(self.w.max())
        low = float(ranked.min())
        extent = float(ranked.max()) - low
        # Fast-test layout, one row per box: x1 + i*y1, -x2 - i*y2, so that one maximum gives
        # both intersection corners. It rounds differently from OpenCV's intersection
        # arithmetic; the exact band absorbs that.
        cls_low = int(self.cls.min())
        classes = int(self.cls.max()) - cls_low
        step = 2.0 * extent + 1.0  # a gap of extent + 1 between classes, at any magnitude
        if classes:
            shift = (self.cls - cls_low if cls_low else self.cls) * complex(step, step)
            top_left += shift
            bottom_right += shift
        np.negative(bottom_right, out=bottom_right)
        self.corners = corners
        reach = abs(low) + extent + classes * step  # largest magnitude of a moved coordinate
        # Window search on twice the centre x: IoU > t needs |cx_a - cx_b| < (w_a + w_b) / 2 -
        # t * max(w_a, w_b) (IoU is at most the x overlap over the wider width), which is at
        # most w_a / 2 + (0.5 - t) * max_w for t < 0.5 and (1 - t) * w_a otherwise. t is
        # lowered by the exact band and the window padded for rounding, so no suppressing pair
        # is missed.
        key = self.key = top_left.real - bottom_right.real  # x1 + x2
        t_win = max(t_min - _BAND, 0.0)
        pad = 2e-9 * (reach + max_w)
        if t_win < 0.5:
            half = self.w + (2.0 * (0.5 - t_win) * max_w + pad)
        else:
            half = self.w * max(2.0 * (1.0 - t_win), 0.0)
            half += pad
        self.window = np.empty((n, 2))  # each box's key range, for one searchsorted per step
        np.subtract(key, half, out=self.window[:, 0])
        np.add(key, half, out=self.window[:, 1])
        # float64 rounding of an intersection side is about 8 * reach * eps; it must stay well
        # inside the exact band for the smallest boxes, else every pair is tested exactly.
        delta = 8.0 * (reach + 2.0 * extent) * _DBL_EPS  # 2 * extent >= max_w + max_h
        self.exact_pairs = delta * 2.0 * extent + delta * delta >= 0.25 * _BAND * min_side * min_side

    def subset(self, ranks: np.ndarray) -> _Ranked:
        """The same problem restricted to ``ranks`` (OpenCV's class shift still sees every box)."""
        boxes, cls, order, iou_threshold, class_iou = self.inputs
        return _Ranked(boxes, cls, order.take(ranks), iou_threshold, class_iou)

    def xywh(self, ranks: np.ndarray) -> tuple[np.ndarray, ...]:
        """OpenCV's shifted ``x, y, w, h`` of the boxes at ``ranks``."""
        if self._opencv_xy is None:
            # OpenCV's shift: class_id * (max_coord + 1), max_coord the largest of 0 and every
            # input box's x, y, x + w, y + h, including boxes dropped for a NaN score.
            boxes, _, order, _, _ = self.inputs
            xy = boxes[:, :2]
            max_coord = max(0.0, float(xy.max()), float((xy + (boxes[:, 2:] - xy)).max()))
            self._opencv_xy = boxes.take(order, 0)[:, :2] + (self.cls * (max_coord + 1.0))[:, None]
        xy = self._opencv_xy.take(ranks, 0)
        return xy[:, 0], xy[:, 1], self.w.take(ranks), self.h.take(ranks)


def _opencv_overlap(box_a: tuple[np.ndarray, ...], box_b: tuple[np.ndarray, ...]) -> np.ndarray:
    """OpenCV's ``rectOverlap`` for ``Rect2d`` pairs given as ``(x, y, w, h)`` arrays, as float32.

    Follows ``jaccardDistance`` and ``Rect_::operator&=`` operation by operation so that it
    rounds the same: intersection sides ``min(w_lo - (x_hi - x_lo), w_hi)``, empty for
    non-positive sizes, then ``1.f - (float)(1.0 - inter / (area_a + area_b - inter))``, and
    1.0 when the two areas sum to at most float64 epsilon.
    """
    xa, ya, wa, ha = box_a
    xb, yb, wb, hb = box_b
    a_left = xa < xb
    x_lo = np.where(a_left, xa, xb)
    x_hi = np.where(a_left, xb, xa)
    w_lo = np.where(a_left, wa, wb)
    a_top = ya < yb
    y_lo = np.where(a_top, ya, yb)
    y_hi = np.where(a_top, yb, ya)
    h_lo = np.where(a_top, ha, hb)
    iw = np.minimum(w_lo - (x_hi - x_lo), np.where(a_left, wb, wa))
    ih = np.minimum(h_lo - (y_hi - y_lo), np.where(a_top, hb, ha))
    empty = (wa <= 0) | (ha <= 0) | (wb <= 0) | (hb <= 0) | (iw <= 0) | (ih <= 0)
    empty |= (x_lo < 0) & (x_lo + w_lo < x_hi)
    empty |= (y_lo < 0) & (y_lo + h_lo < y_hi)
    inter = np.where(empty, 0.0, iw * ih)
    area_sum = wa * ha + wb * hb
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = 1.0 - inter / (area_sum - inter)
    dist = np.where(area_sum <= _DBL_EPS, 0.0, dist)
    return np.float32(1.0) - dist.astype(np.float32)


def _take(values: np.ndarray | np.float32, idx: np.ndarray) -> np.ndarray | np.float32:
    return values.take(idx) if isinstance(values, np.ndarray) else values


def _exact_suppresses(r: _Ranked, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether rank ``a`` suppresses rank ``b`` (if kept), in OpenCV's arithmetic."""
    overlap = _opencv_overlap(r.xywh(a), r.xywh(b))
    out = overlap > _take(r.t32, b)
    out &= r.cls.take(a) == r.cls.take(b)
    return out


def _suppressing_pairs(r: _Ranked, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Positions ``i`` where rank ``a[i]``, if kept, suppresses rank ``b[i]`` (same class)."""
    if r.exact_pairs:
        return _exact_suppresses(r, a, b).nonzero()[0]
    corners = r.corners.take(a, 0)
    flat = corners.view(np.float64)
    np.maximum(flat, r.corners.take(b, 0).view(np.float64), out=flat)
    neg_wh = corners[:, 0] + corners[:, 1]  # -(iw + i*ih)
    flat = neg_wh.view(np.float64)
    # Against an array of zeros: with a scalar 0.0, numpy takes a loop about 4 times slower.
    np.minimum(flat, np.zeros(flat.size), out=flat)
    # IoU > t  <=>  inter / (area_a + area_b) > t / (1 + t) =: k
    ratio = neg_wh.real * neg_wh.imag
    ratio /= r.area.take(a) + r.area.take(b)
    if isinstance(r.k_hi, np.ndarray):
        sure = ratio > r.k_hi.take(b)
        n_maybe = np.count_nonzero(ratio > r.k_lo.take(b))
    else:
        sure = ratio > r.k_hi
        n_maybe = np.count_nonzero(ratio > r.k_lo)
    hits = sure.nonzero()[0]
    if n_maybe == hits.size:
        return hits
    # Some pairs are too close to the threshold for the fast test: redo those exactly.
    lo = r.k_lo.take(b) if isinstance(r.k_lo, np.ndarray) else r.k_lo
    band = ((ratio > lo) & ~sure).nonzero()[0]
    sure[band] = _exact_suppresses(r, a.take(band), b.take(band))
    return sure.nonzero()[0]


def _greedy_pass(m: int, src: np.ndarray, dst: np.ndarray) -> list[int]:
    """Greedy NMS over ``m <= 128`` boxes in rank order, given the pairs where ``src`` would
    suppress ``dst`` (local indices, ``src < dst``); returns the kept local indices.

    Each box's targets become one or two 64-bit masks (boxes 0-63 and 64-127), so the
    sequential pass costs a test and an ``or`` or two per box.
    """
    width = 64 if m <= 64 else 128
    targets = np.zeros(m * width, dtype=bool)  # row after row (flat: one index per pair)
    targets[src * width + dst] = True
    words = np.packbits(targets, bitorder="little").view("<u8").tolist()
    keep = []
    if m <= 64:
        done = 0
        for i, mask in enumerate(words):
            if not done & _BITS[i]:
                keep.append(i)
                done |= mask
        return keep
    done_low = done_high = 0
    for i in range(64):
        if not done_low & _BITS[i]:
            keep.append(i)
            done_low |= words[2 * i]
            done_high |= words[2 * i + 1]
    for i in range(64, m):
        if not done_high & _BITS[i - 64]:
            keep.append(i)
            done_high |= words[2 * i + 1]
    return keep


@lru_cache(maxsize=_BLOCK + 1)
def _arange(m: int) -> np.ndarray:
    out = np.arange(m)
    out.flags.writeable = False  # shared between calls
    return out


@lru_cache(maxsize=_DENSE_MAX + 1)
def _upper_pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.triu_indices(m, 1)
    rows = rows.astype(np.intp)
    cols = cols.astype(np.intp)
    rows.flags.writeable = cols.flags.writeable = False  # shared between calls
    return rows, cols


def _resolve_dense(r: _Ranked, block: np.ndarray) -> np.ndarray:
    """Greedy NMS among a few boxes (at most ``_DENSE_MAX`` ascending ranks, none suppressed
    by an earlier box): test every pair, then one greedy pass. Returns the kept ranks."""
    m = block.size
    if m < 2:
        return block
    rows, cols = _upper_pairs(m)
    edges = _suppressing_pairs(r, block.take(rows), block.take(cols))
    if edges.size == 0:
        return block
    return block.take(_greedy_pass(m, rows.take(edges), cols.take(edges)))


def _window_pairs(
    keys: np.ndarray, ids: np.ndarray, windows: np.ndarray, src: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(src[i], ids[j])`` with ``windows[i, 0] <= keys[j] < windows[i, 1]``; ``keys``
    ascending, ``windows`` an ``(m, 2)`` array (the upper ends are padded, so excluding them
    loses no pair)."""
    ends = keys.searchsorted(windows)
    last = ends[:, 1]
    counts = last - ends[:, 0]
    stops = counts.cumsum()
    pos = np.arange(int(stops[-1]))
    pos += (last - stops).repeat(counts)  # window i fills [stops[i] - counts[i], stops[i])
    return src.repeat(counts), ids.take(pos)


def _resolve_block(r: _Ranked, block: np.ndarray) -> np.ndarray:
    """Greedy NMS among ``block`` (at most ``_BLOCK`` ascending ranks, none suppressed by an
    earlier box), pairs found by the window search inside the block. Returns kept ranks."""
    m = block.size
    if m <= _DENSE_MAX:
        return _resolve_dense(r, block)
    first = int(block[-1]) + 1 == m  # ranks 0 to m - 1: local indices are ranks, slices do
    keys = r.key[:m] if first else r.key.take(block)
    by_x = keys.argsort()
    windows = r.window[:m] if first else r.window.take(block, 0)
    src, dst = _window_pairs(keys.take(by_x), by_x, windows, _arange(m))
    later = dst > src
    src = src.compress(later)
    dst = dst.compress(later)
    if first:
        edges = _suppressing_pairs(r, src, dst)
    else:
        edges = _suppressing_pairs(r, block.take(src), block.take(dst))
    if edges.size == 0:
        return block
    return block.take(_greedy_pass(m, src.take(edges), dst.take(edges)))


def _greedy_blocks(r: _Ranked) -> np.ndarray:
    """Greedy NMS block by block: resolve the best undecided boxes together, then let their
    kept boxes suppress later boxes found by the window search."""
    # Blocks only suppress boxes after the first block: only those are sorted along x.
    by_x = r.key[_BLOCK:].argsort()
    keys = r.key[_BLOCK:].take(by_x)
    by_x += _BLOCK
    alive = np.ones(r.n, dtype=bool)
    kept = []
    block = _arange(_BLOCK)
    undecided = r.n - _BLOCK  # boxes after the block not yet suppressed
    while True:
        kept_block = _resolve_block(r, block)
        kept.append(kept_block)
        start = int(block[-1]) + 1
        alive[:start] = False
        if 2 * undecided < by_x.size:  # drop decided boxes from the search
            live = alive.take(by_x)
            by_x = by_x.compress(live)
            keys = keys.compress(live)
        src, dst = _window_pairs(keys, by_x, r.window.take(kept_block, 0), kept_block)
        if by_x.size > undecided:  # the search still holds decided boxes
            live = alive.take(dst)
            src = src.compress(live)
            dst = dst.compress(live)
        if dst.size:
            alive[dst.take(_suppressing_pairs(r, src, dst))] = False
        rest = alive[start:].nonzero()[0]
        if rest.size <= _BLOCK:
            if rest.size:
                kept.append(_resolve_block(r, rest + start))
            return np.concatenate(kept)
        rest += start
        block = rest[:_BLOCK]
        undecided = rest.size - _BLOCK


def _with_flat_boxes(r: _Ranked) -> np.ndarray:
    """Greedy NMS when some boxes have zero width or height.

    In OpenCV's rule two such boxes overlap 1.0 wherever they are (their areas sum to 0),
    and one never overlaps a box with an area above float64 epsilon (the intersection is
    empty). So the flat boxes of a class suppress each other, the first one winning (all
    stay if the class's threshold is 1 or more), and the other boxes are solved on their
    own. Negative sizes or near-zero areas mix the two: they take the plain greedy loop.
    """
    flat = (r.w <= 0.0) | (r.h <= 0.0)
    solid = (~flat).nonzero()[0]
    if (r.w < 0.0).any() or (r.h < 0.0).any() or (solid.size and r.area.take(solid).min() <= _DBL_EPS):
        return _greedy_exact(r)
    kept = [solid.take(_solve(r.subset(solid)))] if solid.size else []
    flat = flat.nonzero()[0]
    _, first = np.unique(r.cls.take(flat), return_index=True)
    loose = _take(r.t32, flat) >= 1.0  # overlap 1.0 does not exceed these thresholds
    keep = np.zeros(flat.size, dtype=bool)
    keep[first] = True
    kept.append(flat.compress(keep | loose))
    return np.sort(np.concatenate(kept))


def _greedy_exact(r: _Ranked) -> np.ndarray:
    """Plain greedy loop in OpenCV's arithmetic, for boxes of negative width or height (the
    window search cannot take them: OpenCV may give them overlap 1 wherever they are)."""
    alive = np.arange(r.n)
    kept = []
    while alive.size:
        top = alive[:1]
        kept.append(int(top[0]))
        rest = alive[1:]
        alive = rest.compress(~_exact_suppresses(r, top.repeat(rest.size), rest))
    return np.array(kept, dtype=np.intp)
