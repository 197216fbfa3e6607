"""The daemon's tracking events: ``new``, ``update`` on zone changes (with their hysteresis),
``end`` when an object is gone and at stop, timed by the frames' monotonic clock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgecnn.config.device import TrackSettings
from edgecnn.daemon.tracking import TrackEvents
from edgecnn.sinks.base import Detection
from edgecnn.sources.base import Frame

FPS = 10.0
IMAGE = np.zeros((1, 1, 3), np.uint8)


def frame(k: int, wall_step: float = 0.0) -> Frame:
    """Frame ``k`` at FPS: wall clock from 1000 s (stepped by ``wall_step``), monotonic from 50 s."""
    return Frame(image=IMAGE, ts=1000.0 + k / FPS + wall_step, index=k, monotonic=50.0 + k / FPS)


def person(
    zones: tuple[str, ...] = (), score: float = 0.9, x: float = 100.0, *, as_car: bool = False
) -> Detection:
    """The person's detection (``as_car``: the detector calls it a car on this frame)."""
    label, class_id = ("car", 1) if as_car else ("person", 0)
    return Detection(label, class_id, score, (x, 100.0, x + 40.0, 160.0), zones)


def events_of(**settings: Any) -> TrackEvents:
    return TrackEvents(TrackSettings(**settings), ["person", "car"], lambda ts: f"{ts:.1f}")


# where the object stands on each frame (None: not detected), and the update events that
# zone_hits 3 and 1 give: frame -> (zones, entered, left)
ZONES: list[tuple[str, ...] | None] = [
    ("a",), ("a",),  # the object gets its id on frame 1, standing in a
    ("a", "b"), ("a", "c"), ("a", "b"),  # on b's edge: in, out, in (and in c for one frame)
    None,  # hidden: counts neither way
    ("a", "b"), ("a", "b"),  # in b for the third detection in a row
    ("b",), (), ("b",),  # out of a three times in a row (b flickers meanwhile)
    (), (), (),
]
UPDATES = {
    3: {7: (["a", "b"], ["b"], []), 10: (["b"], [], ["a"]), 13: ([], [], ["b"])},
    1: {
        2: (["a", "b"], ["b"], []),
        3: (["a", "c"], ["c"], ["b"]),
        4: (["a", "b"], ["b"], ["c"]),
        8: (["b"], [], ["a"]),
        9: ([], [], ["b"]),
        10: (["b"], ["b"], []),
        11: ([], [], ["b"]),
    },
}


END_ZONES = {3: ["a", "b"], 1: ["a", "b", "c"]}


@pytest.mark.parametrize("zone_hits", [3, 1])
def test_zone_changes_give_update_events_once_they_held_for_zone_hits_detections(zone_hits: int) -> None:
    tracking = events_of(zone_hits=zone_hits, max_lost_s=5.0)
    updates = {}
    for k, zones in enumerate(ZONES):
        score = round(0.5 + k / 100, 5)
        detections = [] if zones is None else [person(zones, score, as_car=k == 7)]
        out, events = tracking.update(detections, frame(k))
        if k == 1:
            assert events == ({"type": "new", "id": 1, "label": "person", "score": 0.51,
                               "box": [100.0, 100.0, 140.0, 160.0], "start": "1000.0", "zones": ["a"],
                               "stationary": False},)
            continue
        assert all(e["type"] == "update" for e in events) and len(events) <= 1
        for event in events:
            assert out[0].track_id == event["id"] == 1
            # the label the object was seen as most often (not frame 7's "car"), this frame's score
            assert (event["label"], event["score"], event["start"]) == ("person", score, "1000.0")
            assert event["box"] == [100.0, 100.0, 140.0, 160.0]
            updates[k] = (event["zones"], event["entered"], event["left"])
            assert event["stationary"] is False  # 1.4 s standing: below stationary_s
    assert updates == UPDATES[zone_hits]
    # the end event lists every zone the object counted as standing in, in order of entry
    (end,) = tracking.end_all()
    assert end["zones"] == END_ZONES[zone_hits]


def test_no_update_events_without_zones_and_end_all_ends_the_followed_objects() -> None:
    tracking = events_of(min_hits=2, max_lost_s=5.0)
    kinds = []
    for k in range(20):  # a person walking right, a car appearing on frame 15 (tentative at the end)
        detections = [person(x=100.0 + 5 * k)]
        if k >= 15:
            detections.append(Detection("car", 1, 0.8, (300.0, 0.0, 340.0, 30.0)))
        if k == 19:
            detections = detections[1:]  # the person is missed on the last frame
        kinds += [e["type"] for e in tracking.update(detections, frame(k))[1]]
    assert kinds == ["new", "new"]
    ended = tracking.end_all()
    assert [(e["type"], e["id"], e["label"]) for e in ended] == [("end", 1, "person"), ("end", 2, "car")]
    walker = ended[0]
    assert (walker["start"], walker["end"], walker["frames"]) == ("1000.0", "1001.8", 19)
    assert walker["duration_s"] == pytest.approx(1.8) and walker["box"] == [190.0, 100.0, 230.0, 160.0]
    assert (ended[1]["start"], ended[1]["end"], ended[1]["frames"]) == ("1001.5", "1001.9", 5)
    assert tracking.end_all() == ()  # forgotten: ending twice gives nothing
    assert tracking.tracker.tracks == []


@pytest.mark.parametrize("wall_step", [-3600.0, 3600.0])
def test_lost_objects_end_by_the_frames_monotonic_time_when_the_wall_clock_steps(wall_step: float) -> None:
    """Seen on frames 0-4, then hidden; the wall clock steps by an hour at frame 6. With
    max_lost_s 0.55 the object ends on frame 10 (0.6 s after its last detection) either way,
    and its times are those its frames had."""
    tracking = events_of(max_lost_s=0.55)
    ended = {}
    for k in range(30):
        detections = [person(("a",))] if k < 5 else []
        for event in tracking.update(detections, frame(k, wall_step if k >= 6 else 0.0))[1]:
            if event["type"] == "end":
                ended[k] = event
    assert list(ended) == [10]
    assert (ended[10]["start"], ended[10]["end"]) == ("1000.0", "1000.4")
    assert ended[10]["duration_s"] == pytest.approx(0.4) and ended[10]["frames"] == 5
    assert ended[10]["zones"] == ["a"]


def test_an_object_that_stays_put_becomes_stationary_and_moving_again_ends_it() -> None:
    """stationary_s 1.0 at 10 frames/s. A person walks in at 8 px a frame (a move every second
    frame: 16 px from where it last moved is IoU 0.43), stops at x=100 on frame 5, stands there
    with its box jittering by 3 px (IoU 0.86 with where it stopped), hidden on frames 12-13 (it
    is where it was: time still counts), and walks off from frame 25 (moving on frame 26). One
    update when it has stood for 1 s (frame 15), one when it moves; entered and left are
    empty in both; end reports the last state."""
    tracking = events_of(stationary_s=1.0, max_lost_s=5.0)
    seen = {}
    for k in range(30):
        if k in (12, 13):
            detections = []
        elif k <= 5:
            detections = [person(x=60.0 + 8.0 * k)]
        elif k < 25:
            detections = [person(x=100.0 + (3.0 if k % 2 else -3.0))]
        else:
            detections = [person(x=100.0 + 8.0 * (k - 24))]
        for event in tracking.update(detections, frame(k))[1]:
            seen[k] = event
    assert seen[1]["type"] == "new" and seen[1]["stationary"] is False
    updates = {k: e for k, e in seen.items() if e["type"] == "update"}
    assert sorted(updates) == [15, 26]
    assert updates[15]["stationary"] is True and updates[26]["stationary"] is False
    assert all(e["entered"] == [] and e["left"] == [] for e in updates.values())
    (end,) = tracking.end_all()
    assert end["stationary"] is False


def test_stationary_s_0_never_makes_an_object_stationary() -> None:
    tracking = events_of(stationary_s=0.0)
    kinds = [e["type"] for k in range(200) for e in tracking.update([person()], frame(k))[1]]
    assert kinds == ["new"]
    assert tracking.end_all()[0]["stationary"] is False
