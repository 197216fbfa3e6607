"""Tracking metrics: CLEAR MOT (MOTA, MOTP, ID switches) and IDF1, from boxes with ids.

CLEAR MOT (Bernardin and Stiefelhagen, 2008), frame by frame: a ground-truth object and a
tracker hypothesis may pair when their boxes overlap by IoU at least ``iou``; pairs of the
previous frames are kept while they still may; the rest are paired by least total distance
(``1 - IoU``, :func:`~edgecnn.metrics.assignment.min_cost_assignment`), and an object paired
with another hypothesis than the last one it had counts as an ID switch. Objects left over
are misses, hypotheses left over false positives::

    MOTA = 1 - (misses + false positives + ID switches) / ground-truth boxes
    MOTP = mean IoU of the pairs (py-motmetrics reports 1 - this, a distance)

IDF1 (Ristani et al., 2016) pairs whole ground-truth tracks with whole hypothesis tracks,
one to one, so as to cover the most frames where they overlap by ``iou``:
``IDF1 = 2 IDTP / (ground-truth boxes + hypothesis boxes)``. The numbers equal
py-motmetrics' (the tests compare them on random scenes).

Inputs are ``{frame: [(id, (x1, y1, x2, y2)), ...]}`` mappings; :func:`read_mot` reads the
MOT Challenge text format (``edgecnn data synth-video`` writes its ground truth so) and
:func:`read_track_records` the JSON lines of ``edgecnn run --track``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgecnn.errors import UserError
from edgecnn.metrics.assignment import min_cost_assignment
from edgecnn.postprocess.track import box_iou

Box = tuple[float, float, float, float]
Frames = Mapping[int, Sequence[tuple[int, Box]]]

_NO_PAIR = 1e6  # cost of a pair that must not be made (more than any number of real pairs)


@dataclass(frozen=True)
class MotScores:
    """CLEAR MOT and identity scores of one sequence (see the module docstring).

    Attributes:
        frames: frames with ground truth or hypotheses.
        objects: ground-truth boxes.
        hypotheses: hypothesis boxes.
        matches: pairs made (ID switches included).
        misses: ground-truth boxes left unpaired.
        false_positives: hypothesis boxes left unpaired.
        id_switches: pairs whose object had another hypothesis before.
        mota: multiple object tracking accuracy (1 is perfect; may be negative).
        motp: mean IoU of the pairs.
        idf1: identity F1.
        idp: identity precision, IDTP / hypothesis boxes.
        idr: identity recall, IDTP / ground-truth boxes.
        gt_tracks: ground-truth ids.
        hypothesis_tracks: hypothesis ids.
    """

    frames: int
    objects: int
    hypotheses: int
    matches: int
    misses: int
    false_positives: int
    id_switches: int
    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    gt_tracks: int
    hypothesis_tracks: int

    def to_dict(self) -> dict[str, float | int]:
        """The scores as a JSON-ready mapping."""
        return asdict(self)


def clear_mot(truth: Frames, hypotheses: Frames, iou: float = 0.5) -> MotScores:
    """Score tracker output against ground truth.

    Args:
        truth: ground truth, ``{frame: [(object id, box), ...]}``, boxes ``x1 y1 x2 y2``.
        hypotheses: the tracker's boxes in the same form (ids are its track ids).
        iou: least IoU for an object and a hypothesis to pair.

    Returns:
        The scores.
    """
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    last_pair: dict[int, int] = {}  # object id -> the hypothesis id it was last paired with
    counts = {"objects": 0, "hypotheses": 0, "matches": 0, "misses": 0, "fp": 0, "switches": 0}
    iou_sum = 0.0
    overlap: dict[tuple[int, int], int] = {}  # (object, hypothesis) -> frames they may pair in
    gt_boxes: dict[int, int] = {}
    hyp_boxes: dict[int, int] = {}
    for frame in sorted(set(truth) | set(hypotheses)):
        objects = list(truth.get(frame, ()))
        hyps = list(hypotheses.get(frame, ()))
        oids = [o for o, _ in objects]
        hids = [h for h, _ in hyps]
        for what, ids in (("ground-truth", oids), ("hypothesis", hids)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"frame {frame}: two {what} boxes have the same id")
        for o in oids:
            gt_boxes[o] = gt_boxes.get(o, 0) + 1
        for h in hids:
            hyp_boxes[h] = hyp_boxes.get(h, 0) + 1
        counts["objects"] += len(oids)
        counts["hypotheses"] += len(hids)
        if not oids or not hids:
            counts["misses"] += len(oids)
            counts["fp"] += len(hids)
            continue
        gt = np.array([b for _, b in objects], dtype=np.float64)
        overlaps = box_iou(gt, np.array([b for _, b in hyps], dtype=np.float64))
        valid = overlaps >= iou
        for i, j in zip(*np.nonzero(valid), strict=True):
            key = (oids[i], hids[j])
            overlap[key] = overlap.get(key, 0) + 1
        paired_o = np.zeros(len(oids), dtype=bool)
        paired_h = np.zeros(len(hids), dtype=bool)
        for i, o in enumerate(oids):  # pairs of earlier frames that still may pair
            if o not in last_pair:
                continue
            for j, h in enumerate(hids):
                if h == last_pair[o] and not paired_h[j]:
                    if valid[i, j]:
                        paired_o[i] = paired_h[j] = True
                        counts["matches"] += 1
                        iou_sum += float(overlaps[i, j])
                    break
        open_pairs = valid & ~paired_o[:, None] & ~paired_h[None, :]
        if open_pairs.any():
            cost = np.where(open_pairs, 1.0 - overlaps, _NO_PAIR)
            for i, j in zip(*min_cost_assignment(cost), strict=True):
                if not open_pairs[i, j]:
                    continue
                o, h = oids[i], hids[j]
                if o in last_pair and last_pair[o] != h:
                    counts["switches"] += 1
                last_pair[o] = h
                paired_o[i] = paired_h[j] = True
                counts["matches"] += 1
                iou_sum += float(overlaps[i, j])
        counts["misses"] += int((~paired_o).sum())
        counts["fp"] += int((~paired_h).sum())
    idtp = _identity_true_positives(overlap, list(gt_boxes), list(hyp_boxes))
    n_gt, n_hyp = counts["objects"], counts["hypotheses"]
    errors = counts["misses"] + counts["fp"] + counts["switches"]
    return MotScores(
        frames=len(set(truth) | set(hypotheses)),
        objects=n_gt,
        hypotheses=n_hyp,
        matches=counts["matches"],
        misses=counts["misses"],
        false_positives=counts["fp"],
        id_switches=counts["switches"],
        mota=1.0 - errors / n_gt if n_gt else float("nan"),
        motp=iou_sum / counts["matches"] if counts["matches"] else float("nan"),
        idf1=2.0 * idtp / (n_gt + n_hyp) if n_gt + n_hyp else float("nan"),
        idp=idtp / n_hyp if n_hyp else float("nan"),
        idr=idtp / n_gt if n_gt else float("nan"),
        gt_tracks=len(gt_boxes),
        hypothesis_tracks=len(hyp_boxes),
    )


def _identity_true_positives(
    overlap: dict[tuple[int, int], int], oids: list[int], hids: list[int]
) -> int:
    """The most frames one-to-one pairs of whole tracks can cover (IDTP)."""
    if not overlap:
        return 0
    row = {o: i for i, o in enumerate(oids)}
    col = {h: j for j, h in enumerate(hids)}
    gain = np.zeros((len(oids), len(hids)))
    for (o, h), n in overlap.items():
        gain[row[o], col[h]] = n
    rows, cols = min_cost_assignment(-gain)
    return int(gain[rows, cols].sum())


def read_mot(path: Path, *, ground_truth: bool = True) -> dict[int, list[tuple[int, Box]]]:
    """Read a MOT Challenge text file: ``frame,id,x,y,w,h,conf,...`` per line.

    Args:
        path: the file.
        ground_truth: skip lines whose ``conf`` is 0 (MOT Challenge's "ignore" flag in
            ground truth); hypothesis files keep every line.

    Raises:
        UserError: a line that is not of that form, naming the file and line.
    """
    out: dict[int, list[tuple[int, Box]]] = {}
    for number, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.replace(" ", "").split(",")
        try:
            frame, ident = int(float(fields[0])), int(float(fields[1]))
            x, y, w, h = (float(v) for v in fields[2:6])
            conf = float(fields[6]) if len(fields) > 6 else 1.0
        except (ValueError, IndexError):
            expected = "expected frame,id,x,y,w,h[,conf,...] (MOT Challenge format)"
            raise UserError(f"{path}:{number}: {expected}, got {line[:60]!r}") from None
        if ground_truth and conf == 0.0:
            continue
        out.setdefault(frame, []).append((ident, (x, y, x + w, y + h)))
    return out


def read_track_records(path: Path) -> dict[int, list[tuple[int, Box]]]:
    """The tracked boxes in ``edgecnn run --track`` JSON lines: ``{frame: [(track_id, box)]}``
    (detections without a track id are left out).

    Raises:
        UserError: a line that is not such a record, naming the file and line.
    """
    out: dict[int, list[tuple[int, Box]]] = {}
    for number, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            frame = int(record["frame"])
            found = [
                (int(d["track_id"]), tuple(float(v) for v in d["box"]))
                for d in record["detections"]
                if "track_id" in d
            ]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path}:{number}: not a record of edgecnn run (frame, detections)") from None
        out.setdefault(frame, []).extend(found)  # type: ignore[arg-type]
    return out


def _text_lines(path: Path) -> list[str]:
    """The lines of a text file, or a one-line :class:`UserError` saying why not."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it: {exc.strerror or exc}") from None
