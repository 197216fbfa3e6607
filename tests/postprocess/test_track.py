"""The IoU tracker: ids follow objects through motion, crossings, gaps and class changes."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from edgecnn.postprocess.track import IouTracker, box_iou

FPS = 10.0


def box_at(cx: float, cy: float, w: float = 40.0, h: float = 60.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def run(tracker: IouTracker, frames: list[list[tuple[list[float], int]]], start: float = 0.0) -> list:
    """Feed ``frames`` (each a list of (box, class id)) at FPS; the ids per frame."""
    out = []
    for i, dets in enumerate(frames):
        boxes = np.array([b for b, _ in dets], dtype=np.float64).reshape(-1, 4)
        classes = np.array([c for _, c in dets], dtype=np.int64)
        step = tracker.update(boxes, np.full(len(dets), 0.8), classes, start + i / FPS)
        out.append(step)
    return out


def test_box_iou_equals_pycocotools() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, (2, 30, 2))
    wh = rng.uniform(1, 80, (2, 30, 2))
    a = np.concatenate([xy[0], xy[0] + wh[0]], axis=1)
    b = np.concatenate([xy[1], xy[1] + wh[1]], axis=1)
    b[:5] = a[:5] + rng.normal(0, 3, (5, 4))  # some heavy overlaps, not only near misses
    b[:5, 2:] = np.maximum(b[:5, 2:], b[:5, :2] + 1)
    expected = coco_mask.iou(
        np.concatenate([a[:, :2], a[:, 2:] - a[:, :2]], axis=1).tolist(),
        np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1).tolist(),
        [0] * len(b),
    )
    np.testing.assert_allclose(box_iou(a, b), expected, atol=1e-12)
    assert box_iou(a[:1], [[5, 5, 5, 9]]).tolist() == [[0.0]]  # no area: 0, not NaN


def accelerating(start: float, direction: int, frames: int) -> list[float]:
    """Centre x per frame: 10 px per frame at first, 4 px faster each frame, up to 32."""
    xs, x, speed = [], start, 10.0
    for _ in range(frames):
        xs.append(x)
        x += direction * speed
        speed = min(speed + 4.0, 32.0)
    return xs


def test_fast_objects_keep_their_ids_thanks_to_the_prediction() -> None:
    # at 32 px per frame, 40 px wide boxes overlap their previous one by IoU 0.11, below the
    # match threshold: only the predicted box can match them
    a, b = accelerating(40, 1, 18), accelerating(700, -1, 18)
    frames = [[(box_at(xa, 100), 0), (box_at(xb, 300), 0)] for xa, xb in zip(a, b, strict=True)]
    steps = run(IouTracker(iou=0.3, min_hits=2), frames)
    assert box_iou([box_at(a[-2], 100)], [box_at(a[-1], 100)])[0, 0] < 0.12
    assert steps[0].ids.tolist() == [0, 0]  # tentative until the second match
    ids = np.array([s.ids.tolist() for s in steps[1:]])
    assert len(set(ids[:, 0])) == 1 and len(set(ids[:, 1])) == 1
    assert ids[0, 0] != ids[0, 1] and 0 not in ids
    assert [len(s.started) for s in steps] == [0, 2] + [0] * 16
    assert not any(s.ended for s in steps)


def test_without_the_prediction_they_would_be_lost() -> None:
    # the same motion with the velocity forgotten before every frame: the ids change, so the
    # test above depends on the prediction
    tracker = IouTracker(iou=0.3, min_hits=1)
    seen = set()
    for i, x in enumerate(accelerating(40, 1, 18)):
        for track in tracker.tracks:
            track.velocity[:] = 0.0
        step = tracker.update(np.array([box_at(x, 100)]), np.array([0.9]), np.array([0]), i / FPS)
        seen.update(step.ids.tolist())
    assert len(seen) >= 5


def test_an_object_that_stops_short_keeps_its_id() -> None:
    """A car at 20 px a frame stops dead (a car pulling up): its predicted box runs on 20 px
    past it (IoU under 0.3 with where it stands), so only its last box can match it. It keeps
    its id, no second track starts, and it moves off again with the same id."""
    xs = [40.0 + 20 * k for k in range(8)] + [180.0 + (2.0 if k % 2 else -2.0) for k in range(10)]
    xs += [180.0 + 6 * k for k in range(1, 8)]
    frames = [[(box_at(x, 100), 0)] for x in xs]
    steps = run(IouTracker(iou=0.3, min_hits=2, max_lost_s=2.0), frames)
    assert box_iou([box_at(xs[7] + 20, 100)], [box_at(xs[8], 100)])[0, 0] < 0.3  # prediction misses
    ids = [s.ids.tolist() for s in steps[1:]]
    assert ids == [[1]] * len(ids)
    assert sum(len(s.started) for s in steps) == 1 and not any(s.ended for s in steps)


def test_crossing_objects_of_one_class_keep_their_ids() -> None:
    # two people walk past each other on the same line; their boxes coincide mid-way
    frames = []
    for i in range(21):
        left_to_right = box_at(100 + 20 * i, 200)
        right_to_left = box_at(500 - 20 * i, 205)
        pair = [(left_to_right, 0), (right_to_left, 0)]
        frames.append(pair[::-1] if i % 2 else pair)
    steps = run(IouTracker(), frames)
    by_object: dict[str, set[int]] = {"ltr": set(), "rtl": set()}
    for i, step in enumerate(steps[1:], start=1):
        ltr, rtl = (step.ids[1], step.ids[0]) if i % 2 else (step.ids[0], step.ids[1])
        by_object["ltr"].add(int(ltr))
        by_object["rtl"].add(int(rtl))
    assert len(by_object["ltr"]) == 1 and len(by_object["rtl"]) == 1
    assert by_object["ltr"] != by_object["rtl"]


def test_a_short_gap_keeps_the_id_a_long_one_ends_the_track() -> None:
    tracker = IouTracker(max_lost_s=1.0, min_hits=2)
    seen = [(box_at(100 + 5 * i, 100), 0) for i in range(40)]
    frames = [[d] for d in seen[:10]] + [[]] * 8 + [[d] for d in seen[18:25]]  # 0.8 s gap
    steps = run(tracker, frames)
    ids = {int(s.ids[0]) for s in steps if len(s.ids)} - {0}
    assert len(ids) == 1
    assert not any(s.ended for s in steps)
    first = ids.pop()
    # now 1.5 s without it: the track ends on the first frame past max_lost_s
    gap = run(tracker, [[]] * 15, start=25 / FPS)
    ended = [(k, t) for k, s in enumerate(gap) for t in s.ended]
    assert len(ended) == 1
    k, track = ended[0]
    assert track.id == first and track.hits == 17
    assert track.first_ts == pytest.approx(0.0) and track.last_ts == pytest.approx(2.4)
    assert 25 / FPS + k / FPS - track.last_ts > 1.0 >= 25 / FPS + (k - 1) / FPS - track.last_ts
    back = run(tracker, [[seen[39]], [seen[39]]], start=4.0)
    assert back[1].ids[0] not in (0, first)  # a new object, a new id; ids are never reused
    assert back[1].ids[0] > first


def test_a_detection_seen_once_never_gets_an_id() -> None:
    tracker = IouTracker(min_hits=3)
    frames = [[(box_at(100, 100), 0)] for _ in range(5)]
    frames[2].append((box_at(400, 300), 1))  # a one-frame false positive
    steps = run(tracker, frames)
    assert [s.ids[0] for s in steps] == [0, 0, 1, 1, 1]
    assert steps[2].ids[1] == 0
    assert sum(len(s.started) for s in steps) == 1
    assert [t.id for t in tracker.end_all()] == [1]
    assert tracker.tracks == []
    # a tentative track must be matched on consecutive frames: a flickering detection
    # starts over after a frame without it
    flicker = run(IouTracker(min_hits=3), [[(box_at(100, 100), 0)], [], [(box_at(100, 100), 0)]] * 2)
    assert [s.ids.tolist() for s in flicker] == [[0], [], [0], [0], [], [0]]


def test_the_best_overlap_is_matched_first() -> None:
    # in track order, A would take d0 (IoU 0.44) and leave B d1 (0.36): best first gives
    # B d0 (0.96) and A d1 (0.90)
    tracker = IouTracker(min_hits=1)
    first = tracker.update(np.array([[0, 0, 100, 50], [40, 0, 140, 50]]), np.ones(2), np.zeros(2), 0.0)
    a, b = first.ids.tolist()
    second = tracker.update(np.array([[40, 0, 136, 50], [0, 0, 90, 50]]), np.ones(2), np.zeros(2), 0.0)
    assert second.ids.tolist() == [b, a]


def test_classes_are_matched_within_first_then_across() -> None:
    tracker = IouTracker(min_hits=2, max_lost_s=10.0)
    here = box_at(200, 200)
    steps = run(tracker, [[(here, 0)]] * 3)
    assert [int(s.ids[0]) for s in steps] == [0, 1, 1]
    # a box of another class overlapping the track more than its own class's box does: the
    # track keeps its class's box, the other one starts its own track
    steps = run(tracker, [[(box_at(202, 201), 0), (here, 1)], [(here, 0)]], start=0.3)
    assert [s.ids.tolist() for s in steps] == [[1, 0], [1]]  # (the tentative one then ends)
    # the detector calls the object class 1 for two frames, then class 0 again: one id
    # throughout, and the track's class is the one seen most
    steps = run(tracker, [[(here, 1)], [(here, 1)], [(here, 0)]], start=0.5)
    assert [s.ids.tolist() for s in steps] == [[1], [1], [1]]
    assert [t.id for t in tracker.tracks] == [1]
    track = tracker.tracks[0]
    assert track.class_id == 0 and track.votes == {0: 6, 1: 2}
    run(tracker, [[(here, 1)]] * 5, start=0.8)
    assert track.class_id == 1 and track.votes == {0: 6, 1: 7}


def test_a_duplicate_of_a_followed_object_starts_no_track() -> None:
    # class-aware NMS keeps another class's box of the same object: it overlaps the track
    # (IoU 0.6 here), so it is no new object; a box apart from it is one
    tracker = IouTracker(min_hits=2)
    run(tracker, [[(box_at(200, 200), 0)]] * 3)
    duplicate = box_at(212, 200)  # 40 px wide, 12 px off: IoU 0.54 with the object's box
    assert box_iou([box_at(200, 200)], [duplicate])[0, 0] > 0.5
    steps = run(tracker, [[(box_at(200, 200), 0), (duplicate, 1), (box_at(400, 100), 1)]] * 3, start=0.3)
    assert [s.ids.tolist() for s in steps] == [[1, 0, 0], [1, 0, 2], [1, 0, 2]]
    assert [t.id for t in tracker.tracks] == [1, 2]


def test_weak_detections_continue_tracks_but_start_none() -> None:
    tracker = IouTracker(min_hits=2, start_conf=0.5)
    here, there = np.array([box_at(100, 100)]), np.array([box_at(300, 100)])
    weak, strong, zero = np.array([0.4]), np.array([0.9]), np.zeros(1)
    assert [tracker.update(there, weak, zero, k / FPS, k).ids[0] for k in range(3)] == [0, 0, 0]
    assert tracker.tracks == []
    ids = [tracker.update(here, strong if k < 5 else weak, zero, k / FPS, k).ids[0] for k in range(3, 8)]
    assert ids == [0, 1, 1, 1, 1] and tracker.tracks[0].best_score == 0.9


def test_tracks_with_an_id_are_matched_before_tentative_ones() -> None:
    # A (with its id) and T (tentative, overlapping A by IoU 0.18) both overlap the next
    # detection; T more (0.60 against 0.38), but A is served first
    tracker = IouTracker(min_hits=1)
    a = tracker.update(np.array([[0, 0, 100, 50]]), np.ones(1), np.zeros(1), 0.0, 0).ids[0]
    tracker.min_hits = 2
    t = tracker.update(np.array([[0, 0, 100, 50], [70, 0, 170, 50]]), np.ones(2), np.zeros(2), 0.1, 1)
    assert t.ids.tolist() == [a, 0]
    step = tracker.update(np.array([[45, 0, 145, 50]]), np.ones(1), np.zeros(1), 0.2, 2)
    assert step.ids.tolist() == [a] and [tr.id for tr in tracker.tracks] == [a]


def test_motion_is_per_frame_when_frame_numbers_are_given() -> None:
    # a video file is read in bursts: two frames 1 ms apart, then 200 ms without one. Per
    # second, the 1 ms step looks like a huge speed; per frame, the motion is what it is.
    xs = accelerating(40, 1, 16)
    times = [k // 2 * 0.2 + k % 2 * 0.001 for k in range(16)]

    def ids(frames: bool) -> list[int]:
        tracker = IouTracker(min_hits=2)
        seen = []
        for k, (x, ts) in enumerate(zip(xs, times, strict=True)):
            frame = k if frames else None
            step = tracker.update(np.array([box_at(x, 100)]), np.ones(1), np.zeros(1), ts, frame)
            seen.extend(step.ids.tolist())
        return seen

    assert ids(frames=True) == [0] + [1] * 15
    assert set(ids(frames=False)[1:]) != {1}  # lost on the way
    # a frame number that does not grow (the source restarted) counts as the next frame
    tracker = IouTracker(min_hits=1)
    for k, frame in enumerate([5, 6, 7, 0, 1]):
        step = tracker.update(np.array([box_at(100 + 10 * k, 100)]), np.ones(1), np.zeros(1), k / FPS, frame)
        assert step.ids.tolist() == [1]


def test_the_order_of_detections_does_not_change_the_ids() -> None:
    rng = np.random.default_rng(0)
    starts = rng.uniform(50, 550, (6, 2))
    moves = rng.uniform(-8, 8, (6, 2))

    def ids_per_object(shuffle: bool) -> list[list[int]]:
        tracker = IouTracker()
        out = []
        for i in range(12):
            boxes = np.array([box_at(*(s + m * i)) for s, m in zip(starts, moves, strict=True)])
            order = rng.permutation(6) if shuffle else np.arange(6)
            step = tracker.update(boxes[order], np.full(6, 0.9), np.zeros(6, np.int64), i / FPS)
            ids = np.empty(6, np.int64)
            ids[order] = step.ids
            out.append(ids.tolist())
        return out

    for shuffle in (False, True):
        ids = np.array(ids_per_object(shuffle)[1:])  # (frames, objects), tentative frame 0 left out
        assert all(len(set(column)) == 1 for column in ids.T)  # one id per object throughout
        assert len(set(ids[0])) == 6 and 0 not in ids


@pytest.mark.parametrize("step_s", [-3600.0, 3600.0])
def test_lost_tracks_end_by_the_monotonic_clock_when_the_wall_clock_steps(step_s: float) -> None:
    """NTP sets the clock of a board without an RTC while an object is hidden: a step back
    must not keep its track an hour longer, a step forward must not end it at once."""
    tracker = IouTracker(max_lost_s=0.95, min_hits=2)
    ended_at, ids = [], []
    for k in range(40):  # seen on frames 0-13, then hidden; the clock steps at frame 12
        wall = 1_000_000.0 + k / FPS + (step_s if k >= 12 else 0.0)
        seen = k < 14 or (step_s > 0 and k >= 20)  # (forward: back 0.7 s after it was lost)
        boxes = np.array([box_at(100, 100)] if seen else []).reshape(-1, 4)
        scores, classes = np.full(len(boxes), 0.9), np.zeros(len(boxes))
        step = tracker.update(boxes, scores, classes, wall, k, mono=50.0 + k / FPS)
        ids.extend(step.ids.tolist())
        ended_at += [(k, t) for t in step.ended]
    if step_s < 0:
        # lost after frame 13 (monotonic 51.3): ends on the first frame more than 0.95 s later
        ((k, track),) = ended_at
        assert k == 23
        assert track.last_ts == pytest.approx(1_000_001.3 + step_s)  # its last detection's wall time
        assert track.duration_s == pytest.approx(1.3)
    else:
        # hidden for 0.6 s of real time across a one-hour jump: the same object, the same id
        assert ended_at == [] and set(ids[1:]) == {1}
        assert tracker.tracks[0].last_ts == pytest.approx(1_000_000.0 + 3.9 + step_s)
        assert tracker.tracks[0].duration_s == pytest.approx(3.9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iou": 0.0}, "iou"),
        ({"iou": 1.5}, "iou"),
        ({"max_lost_s": -1.0}, "max_lost_s"),
        ({"min_hits": 0}, "min_hits"),
        ({"smoothing": 1.0}, "smoothing"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IouTracker(**kwargs)


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 boxes, 1 scores"):
        IouTracker().update(np.zeros((2, 4)), np.zeros(1), np.zeros(2), 0.0)
