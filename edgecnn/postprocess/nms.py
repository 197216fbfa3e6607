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

How it is fast in numpy: boxes are sorted by score once and their centres once along x. A
pair of boxes can only exceed an IoU threshold ``t`` when their centres are closer along x
than ``w_a / 2 + max(0.5 - t, 0) * max_w``, so the candidates of a box come from a window
search in the x-sorted centres. The best 128 undecided boxes are resolved together (window
pairs inside the block, then one sequential pass over bit masks in Python integers); their
kept boxes then suppress the later boxes found in their windows, and the next block starts
from the best box left. Every pair test is float64 IoU on whole arrays; a pair within 1e-6 of
the threshold is recomputed in OpenCV's own arithmetic (every pair is, when boxes are so small
compared with their coordinates that float64 rounding could reach that band). Boxes with zero
width or height are settled apart (see ``_with_flat_boxes``); negative sizes go through a plain
greedy loop in OpenCV's arithmetic, one kept box at a time.
``benchmarks/nms.py`` compares the speed with OpenCV's.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

__all__ = ["batched_nms"]

_DBL_EPS = float(np.finfo(np.float64).eps)
_BAND = 1e-6  # pairs whose fast IoU is this close to the threshold are recomputed exactly
_DENSE_MAX = 48  # blocks this small test every pair instead of searching windows
_BLOCK = 128  # best undecided boxes resolved together
_SORT_KEY_MIN = 2048  # from this size a 64-bit key sort beats numpy's stable float sort


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
    s32 = np.asarray(scores, dtype=np.float32).reshape(-1)
    cls = _as_class_ids(class_ids)
    n = s32.size
    if boxes.shape[0] != n or cls.size != n:
        raise ValueError(f"got {boxes.shape[0]} boxes, {n} scores and {cls.size} class ids")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.isfinite(np.add.reduce(boxes, axis=None)) and not np.isfinite(boxes).all():
        raise ValueError("box coordinates must be finite")
    order = _descending_order(s32)
    if np.isnan(np.add.reduce(s32)) and np.isnan(s32).any():
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
        return _resolve_dense(r, np.arange(r.n))
    return _greedy_blocks(r)


def _as_class_ids(class_ids: np.ndarray) -> np.ndarray:
    cls = np.asarray(class_ids).reshape(-1)
    if cls.dtype.kind in "iub":
        return cls.astype(np.int64, copy=False)
    as_int = cls.astype(np.int64)
    if not np.array_equal(as_int, cls):
        raise ValueError("class ids must be integers")
    return as_int


def _descending_order(s32: np.ndarray) -> np.ndarray:
    """Indices by descending float32 score, equal scores in input order (a stable sort)."""
    if s32.size < _SORT_KEY_MIN:
        return (-s32).argsort(kind="stable")
    order = (-s32).argsort()
    ranked = s32.take(order)
    if not (ranked[1:] == ranked[:-1]).any():
        return order  # no ties, so the unstable sort gave the stable order
    # Unique 64-bit keys (order-preserving score bits, then the index) sort unstably but
    # deterministically, several times faster than numpy's stable float sort.
    bits = (-s32 + np.float32(0.0)).view(np.uint32)  # + 0.0 turns -0.0 into 0.0
    flip = np.where(bits >> np.uint32(31), np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
    keys = (bits ^ flip).astype(np.uint64) << np.uint64(32)
    keys |= np.arange(s32.size, dtype=np.uint64)
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
    """Per-box arrays in descending score order (index = rank), shifted by class like OpenCV.

    Points are complex numbers ``x + iy`` so that one numpy call handles both axes.
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
        corners_in = ranked.view(np.complex128)  # (n, 2): x1 + i*y1, x2 + i*y2
        top_left = corners_in[:, 0]
        size = corners_in[:, 1] - top_left  # w + i*h, OpenCV's width and height
        min_side = float(np.minimum.reduce(size.view(np.float64)))
        max_w = float(np.maximum.reduce(size.real))
        max_h = float(np.maximum.reduce(size.imag))
        degenerate = min_side <= 0.0
        # OpenCV's shift: the largest of 0 and every box's x, y, x + w, y + h (x + w >= x
        # when w > 0), over every input box, including those dropped for a NaN score.
        every = boxes if n < boxes.shape[0] else ranked
        if degenerate or every is boxes:
            every_xy = every[:, :2]
            max_coord = max(0.0, float(every_xy.max()), float((every_xy + (every[:, 2:] - every_xy)).max()))
        else:
            max_coord = max(0.0, float(np.maximum.reduce((top_left + size).view(np.float64))))
        self.cls = cls.take(order)
        cls_low = int(np.minimum.reduce(self.cls))
        cls_high = int(np.maximum.reduce(self.cls))
        shift = self.cls * (max_coord + 1.0)
        xy = top_left + shift * (1.0 + 1.0j)  # exactly OpenCV's shifted x and y
        self.x = xy.real
        self.y = xy.imag
        self.w = size.real
        self.h = size.imag
        self.t32 = _thresholds_f32(iou_threshold, class_iou, self.cls)
        t = self.t32.astype(np.float64) if isinstance(self.t32, np.ndarray) else float(self.t32)
        k = t / (1.0 + t)  # IoU > t  <=>  inter / (area_a + area_b) > k
        self.k_lo = np.maximum(k - _BAND, 0.0) if isinstance(k, np.ndarray) else max(k - _BAND, 0.0)
        self.k_hi = k + _BAND
        self.area = self.w * self.h
        t_min = float(self.t32.min()) if isinstance(self.t32, np.ndarray) else float(self.t32)
        # The fast test and the window search shift classes further apart than OpenCV does,
        # so that boxes of different classes never meet even with negative coordinates.
        low = min(0.0, float(np.minimum.reduce(ranked, axis=None)))
        if low < 0.0 or cls_low < 0:
            xy = top_left + (self.cls - cls_low) * (max_coord - low + 1.0) * (1.0 + 1.0j)
        reach = max(-low, max_coord) + (cls_high - min(cls_low, 0)) * (max_coord - low + 1.0)
        # Fast-test layout, one row per box: (x1, y1, -x2, -y2), so that one maximum gives
        # both intersection corners. It rounds differently from OpenCV's intersection
        # arithmetic; the exact band absorbs that.
        self.corners = np.empty((n, 2), dtype=np.complex128)
        self.corners[:, 0] = xy
        np.add(xy, size, out=self.corners[:, 1])
        self.corners[:, 1] *= -1.0
        # Window search: IoU > t needs |cx_a - cx_b| < (w_a + w_b) / 2 - t * max(w_a, w_b),
        # which is at most w_a / 2 + max(0.5 - t, 0) * max_w. t is lowered by the exact band
        # and the window padded for rounding, so no suppressing pair is missed.
        self.cx = xy.real + 0.5 * self.w
        self.half_x = 0.5 * self.w
        self.half_x += max(0.5 - max(t_min - _BAND, 0.0), 0.0) * max_w + 1e-9 * (reach + max_w)
        # float64 rounding of an intersection side is about 8 * reach * eps; it must stay well
        # inside the exact band for the smallest boxes, else every pair is tested exactly.
        delta = 8.0 * (reach + max_w + max_h) * _DBL_EPS
        self.exact_pairs = delta * (max_w + max_h) + delta * delta >= 0.25 * _BAND * min_side * min_side
        # Boxes without area overlap in OpenCV's rule even when far apart: no window search.
        self.degenerate = degenerate

    def subset(self, ranks: np.ndarray) -> _Ranked:
        """The same problem restricted to ``ranks`` (OpenCV's class shift still sees every box)."""
        boxes, cls, order, iou_threshold, class_iou = self.inputs
        return _Ranked(boxes, cls, order.take(ranks), iou_threshold, class_iou)

    def xywh(self, ranks: np.ndarray) -> tuple[np.ndarray, ...]:
        """OpenCV's shifted ``x, y, w, h`` of the boxes at ``ranks``."""
        return self.x.take(ranks), self.y.take(ranks), self.w.take(ranks), self.h.take(ranks)


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
    np.minimum(flat, 0.0, out=flat)
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

    Each box's targets become two 64-bit masks (boxes 0-63 and 64-127), so the sequential
    pass costs a shift, a test and an ``or`` or two per box.
    """
    targets = np.zeros((m, 128), dtype=bool)
    targets[src, dst] = True
    words = np.packbits(targets, axis=1, bitorder="little").view("<u8")
    low = words[:, 0].tolist()
    high = words[:, 1].tolist()
    done_low = done_high = 0
    keep = []
    for i in range(min(m, 64)):
        if not (done_low >> i) & 1:
            keep.append(i)
            done_low |= low[i]
            done_high |= high[i]
    for i in range(64, m):
        if not (done_high >> (i - 64)) & 1:
            keep.append(i)
            done_high |= high[i]
    return keep


@lru_cache(maxsize=_DENSE_MAX + 1)
def _upper_pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.triu_indices(m, 1)
    return rows.astype(np.intp), cols.astype(np.intp)


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
    keys: np.ndarray, ids: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(i, ids[j])`` with ``lo[i] <= keys[j] <= hi[i]``; ``keys`` ascending."""
    first = keys.searchsorted(lo, "left")
    counts = keys.searchsorted(hi, "right")
    counts -= first
    ends = counts.cumsum()
    pos = np.arange(int(ends[-1]))
    pos += (first - ends + counts).repeat(counts)
    return np.arange(lo.size).repeat(counts), ids.take(pos)


def _resolve_block(r: _Ranked, block: np.ndarray) -> np.ndarray:
    """Greedy NMS among ``block`` (at most ``_BLOCK`` ascending ranks, none suppressed by an
    earlier box), pairs found by the window search inside the block. Returns kept ranks."""
    if block.size <= _DENSE_MAX:
        return _resolve_dense(r, block)
    cx = r.cx.take(block)
    half = r.half_x.take(block)
    by_x = cx.argsort()
    src, dst = _window_pairs(cx.take(by_x), by_x, cx - half, cx + half)
    later = (dst > src).nonzero()[0]
    src = src.take(later)
    dst = dst.take(later)
    edges = _suppressing_pairs(r, block.take(src), block.take(dst))
    if edges.size == 0:
        return block
    return block.take(_greedy_pass(block.size, src.take(edges), dst.take(edges)))


def _greedy_blocks(r: _Ranked) -> np.ndarray:
    """Greedy NMS block by block: resolve the best undecided boxes together, then let their
    kept boxes suppress later boxes found by the window search."""
    cx = r.cx
    half = r.half_x
    by_x = cx.argsort()
    cx_sorted = cx.take(by_x)
    alive = np.ones(r.n, dtype=bool)
    kept = []
    start = 0
    while True:
        rest = alive[start:].nonzero()[0]
        rest += start
        block = rest[:_BLOCK]
        kept_block = _resolve_block(r, block)
        kept.append(kept_block)
        if rest.size <= _BLOCK:
            return np.concatenate(kept)
        start = int(block[-1]) + 1
        alive[:start] = False
        if 2 * (rest.size - _BLOCK) < by_x.size:  # drop decided boxes from the search
            live = alive.take(by_x)
            by_x = by_x.compress(live)
            cx_sorted = cx_sorted.compress(live)
        kx = cx.take(kept_block)
        kh = half.take(kept_block)
        src, dst = _window_pairs(cx_sorted, by_x, kx - kh, kx + kh)
        live = alive.take(dst).nonzero()[0]
        if live.size:
            dst = dst.take(live)
            src = kept_block.take(src.take(live))
            alive[dst.take(_suppressing_pairs(r, src, dst))] = False
        if not alive[start:].any():
            return np.concatenate(kept)


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
