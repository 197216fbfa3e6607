"""Tracking metrics against py-motmetrics (the oracle), and the assignment against scipy."""

from __future__ import annotations

import json
from pathlib import Path

import motmetrics
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from edgecnn.errors import UserError
from edgecnn.metrics.assignment import min_cost_assignment
from edgecnn.metrics.tracking import clear_mot, read_mot, read_track_records
from edgecnn.postprocess.track import box_iou


def test_min_cost_assignment_equals_scipy_on_random_and_tied_costs() -> None:
    rng = np.random.default_rng(0)
    for trial in range(600):
        n, m = (int(v) for v in rng.integers(0, 9, 2))
        cost = rng.integers(0, 4, (n, m)).astype(float) if trial % 2 else rng.random((n, m))
        rows, cols = min_cost_assignment(cost)
        want_rows, want_cols = linear_sum_assignment(cost)
        assert len(rows) == min(n, m) and len(set(rows.tolist())) == len(rows) == len(set(cols.tolist()))
        assert list(rows) == sorted(rows)
        assert cost[rows, cols].sum() == pytest.approx(cost[want_rows, want_cols].sum(), abs=1e-12)
    with pytest.raises(ValueError, match="finite"):
        min_cost_assignment(np.array([[np.inf]]))


def _scene(rng: np.random.Generator, frames: int = 40, objects: int = 5) -> tuple[dict, dict]:
    """Objects walking about; the 'tracker' misses some, swaps ids now and then, jitters
    boxes (some pairs fall below IoU 0.5) and adds false positives."""
    truth: dict[int, list] = {}
    hyp: dict[int, list] = {}
    pos = rng.uniform(0, 300, (objects, 2))
    vel = rng.normal(0, 4, (objects, 2))
    size = rng.uniform(20, 60, (objects, 2))
    ids = list(range(100, 100 + objects))
    fresh = 200
    for f in range(1, frames + 1):
        pos += vel + rng.normal(0, 1, pos.shape)
        for o in range(objects):
            if rng.random() < 0.05:
                continue  # not in the ground truth on this frame
            box = (*pos[o], *(pos[o] + size[o]))
            truth.setdefault(f, []).append((o + 1, box))
            if rng.random() < 0.1:
                continue  # missed
            if rng.random() < 0.04:
                ids[o], fresh = fresh, fresh + 1  # the tracker starts over: a new id
            if rng.random() < 0.02 and o:
                ids[o], ids[o - 1] = ids[o - 1], ids[o]  # two tracks swap their objects
            hyp.setdefault(f, []).append((ids[o], tuple(np.array(box) + rng.normal(0, 4, 4))))
        for k in range(rng.poisson(0.6)):
            p = rng.uniform(0, 300, 2)
            hyp.setdefault(f, []).append((500 + k, (*p, *(p + 30))))
        if f in hyp:  # swapped ids may collide for a frame: keep the first
            seen: set[int] = set()
            hyp[f] = [h for h in hyp[f] if not (h[0] in seen or seen.add(h[0]))]
    return truth, hyp


def _oracle(truth: dict, hyp: dict, iou: float) -> dict:
    acc = motmetrics.MOTAccumulator()
    for f in sorted(set(truth) | set(hyp)):
        objects, hyps = truth.get(f, []), hyp.get(f, [])
        dist = np.zeros((len(objects), len(hyps)))
        if objects and hyps:
            overlaps = box_iou(np.array([b for _, b in objects]), np.array([b for _, b in hyps]))
            dist = np.where(overlaps >= iou, 1.0 - overlaps, np.nan)
        acc.update([o for o, _ in objects], [h for h, _ in hyps], dist, frameid=f)
    names = ["mota", "motp", "num_switches", "num_misses", "num_false_positives", "num_matches"]
    names += ["idf1", "idp", "idr"]
    return motmetrics.metrics.create().compute(acc, metrics=names, name="x").iloc[0].to_dict()


@pytest.mark.parametrize("iou", [0.5, 0.3])
def test_clear_mot_and_idf1_equal_py_motmetrics(iou: float) -> None:
    rng = np.random.default_rng(int(iou * 10))
    switches = 0
    for _ in range(12):
        truth, hyp = _scene(rng)
        ours = clear_mot(truth, hyp, iou)
        ref = _oracle(truth, hyp, iou)
        assert (ours.id_switches, ours.misses, ours.false_positives) == (
            ref["num_switches"],
            ref["num_misses"],
            ref["num_false_positives"],
        )
        assert ours.matches == ref["num_matches"] + ref["num_switches"]  # ours counts switches as pairs too
        assert ours.mota == pytest.approx(ref["mota"], abs=1e-12)
        assert ours.motp == pytest.approx(1.0 - ref["motp"], abs=1e-12)  # IoU, not distance
        for key in ("idf1", "idp", "idr"):
            assert getattr(ours, key) == pytest.approx(ref[key], abs=1e-12), key
        switches += ours.id_switches
    assert switches > 10  # the scenes do exercise switches


def test_a_perfect_tracker_and_known_counts() -> None:
    box = (0.0, 0.0, 10.0, 10.0)
    truth = {1: [(1, box)], 2: [(1, box)], 3: [(1, box)]}
    perfect = clear_mot(truth, {f: [(7, box)] for f in truth})
    assert (perfect.mota, perfect.motp, perfect.idf1, perfect.id_switches) == (1.0, 1.0, 1.0, 0)
    # a new id on frame 3 (one switch), a false positive on frame 2, nothing on frame 1
    hyp = {2: [(7, box), (8, (50.0, 50.0, 60.0, 60.0))], 3: [(9, box)]}
    scores = clear_mot(truth, hyp)
    assert (scores.misses, scores.false_positives, scores.id_switches, scores.matches) == (1, 1, 1, 2)
    assert scores.mota == pytest.approx(1 - 3 / 3)
    assert scores.idf1 == pytest.approx(2 * 1 / (3 + 3))
    with pytest.raises(ValueError, match="frame 1: two hypothesis boxes have the same id"):
        clear_mot(truth, {1: [(7, box), (7, box)]})


def test_the_readers_take_mot_text_and_run_records_and_name_bad_lines(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,20,30,40,1,0,1.0\n1,2,0,0,5,5,0,0,1.0\n\n2,1,12,20,30,40,1,0,0.9\n")
    assert read_mot(gt) == {1: [(1, (10.0, 20.0, 40.0, 60.0))], 2: [(1, (12.0, 20.0, 42.0, 60.0))]}
    assert len(read_mot(gt, ground_truth=False)[1]) == 2  # conf 0 is kept in a hypothesis file
    runs = tmp_path / "tracks.jsonl"
    records = [
        {"frame": 1, "detections": [{"box": [10, 20, 40, 60], "track_id": 3}, {"box": [0, 0, 1, 1]}]},
        {"frame": 2, "detections": []},
    ]
    runs.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert read_track_records(runs) == {1: [(3, (10.0, 20.0, 40.0, 60.0))], 2: []}
    gt.write_text("1,1,10,20\n")
    with pytest.raises(UserError, match=r"gt.txt:1: expected frame,id,x,y,w,h"):
        read_mot(gt)
    runs.write_text('{"frame": 1}\n')
    with pytest.raises(UserError, match=r"tracks.jsonl:1: not a record of edgecnn run"):
        read_track_records(runs)
