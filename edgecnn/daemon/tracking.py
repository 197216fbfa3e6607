"""Tracking in the daemon: track ids on detections, and ``new`` / ``update`` / ``end`` events.

With ``track:`` in the device config, every frame's detections go through an
:class:`~edgecnn.postprocess.track.IouTracker` on the finish thread, after masks and zones.
A detection of a followed object gets its ``track_id``, and its life makes events (Frigate's
event life cycle): ``new`` on the frame on which it gets its id, ``update`` on a frame on
which it enters or leaves one of the config's zones, or becomes stationary or moves again,
``end`` on the frame on which it has been gone for ``max_lost_s``, or when the daemon stops
(:meth:`TrackEvents.end_all`)::

    {"type": "new", "id": 7, "label": "person", "score": 0.81, "box": [x1, y1, x2, y2],
     "start": "2026-12-01T10:00:00.100Z", "zones": ["driveway"], "stationary": false}
    {"type": "update", "id": 7, "label": "person", "score": 0.88, "box": [...],
     "start": "2026-12-01T10:00:00.100Z", "zones": ["porch"], "entered": ["porch"],
     "left": ["driveway"], "stationary": false}
    {"type": "end", "id": 7, "label": "person", "score": 0.93, "box": [...],
     "start": "2026-12-01T10:00:00.100Z", "end": "2026-12-01T10:00:09.700Z",
     "duration_s": 9.6, "frames": 48, "zones": ["driveway", "porch"], "stationary": false}

In ``new``, ``score``, ``box`` and ``zones`` are those of the detection that gave the
object its id (``start`` is the time of its first detection). In ``update``, ``score`` and
``box`` are this frame's detection's, ``label`` the class the object was detected as most
often so far, ``zones`` the zones it stands in after the change (in the order it entered
them), ``entered`` and ``left`` what changed. In ``end``, ``label`` is the class it was
detected as most often, ``score`` the best score it had, ``box`` its last box, ``end`` the
time of its last detection, ``duration_s`` the seconds between its first and last detection
on the monotonic clock (right also when the wall clock stepped meanwhile), and ``zones``
every zone it stood in while it had its id, in the order it entered them (those of ``new``
and of every ``entered``). A frame's events come ``new`` first, then ``update``, then ``end``.

An object is ``stationary`` (Frigate's stationary objects: a parked car, a sleeping dog)
once its box has stayed put for ``stationary_s`` seconds of capture time (monotonic): every
detection since it stopped overlapped the box where it stopped with IoU >= 0.6
(:data:`STATIONARY_IOU`, Frigate's); a detection below that is a move, which ends it. Each
change is an ``update`` of its own, with ``entered`` and ``left`` empty and ``stationary``
the new state; every event carries ``stationary`` (``false`` in ``new``, the last state in
``end``), so that a consumer can leave parked objects alone.

Zone membership changes only when it holds for ``zone_hits`` detections of the object in a
row (3 by default, Frigate's zone inertia): an object standing on a zone's edge, whose foot
point jitters across it, would otherwise enter and leave on alternate frames, and every
change is a message an automation acts on. The same count applies to entering and leaving
(Frigate leaves at once, which keeps that flicker once an object was in). Frames on which
the object is not detected (hidden, or missed by the detector) count neither way: being lost
is not leaving. The price is a delay of ``zone_hits - 1`` detections on a real change.

Motion is measured per frame of the source (``Frame.index``), not per second of capture
time, and lost objects end by the frame's monotonic time (``Frame.monotonic``), not by its
wall-clock time, which steps when NTP sets the clock of a board without a real-time clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgecnn.config.device import TrackSettings
from edgecnn.postprocess.boxes import box_iou
from edgecnn.postprocess.track import IouTracker, Track
from edgecnn.sinks.base import Detection
from edgecnn.sources.base import Frame


@dataclass
class _Zones:
    """Where one followed object stands.

    Attributes:
        inside: the zones it counts as standing in, in the order it entered them.
        entered: every zone it has counted as standing in, in the order it entered them.
        pending: per zone whose detections disagree with ``inside``, how many in a row did.
    """

    inside: list[str]
    entered: list[str]
    pending: dict[str, int] = field(default_factory=dict)

    def see(self, zones: Sequence[str], hits: int) -> tuple[list[str], list[str]]:
        """Count one detection standing in ``zones``; the zones entered and left by it (a
        change needs ``hits`` detections in a row)."""
        here = set(zones)
        pending: dict[str, int] = {}
        entered: list[str] = []
        left: list[str] = []
        for zone in [*self.inside, *(z for z in zones if z not in self.inside)]:
            if (zone in here) == (zone in self.inside):
                continue  # agrees: a change under way, if any, starts over
            count = self.pending.get(zone, 0) + 1
            if count < hits:
                pending[zone] = count
            else:
                (entered if zone in here else left).append(zone)
        self.pending = pending
        self.inside = [z for z in self.inside if z not in left] + entered
        self.entered += [z for z in entered if z not in self.entered]
        return entered, left


#: IoU with the box where an object stopped below which it counts as moving (Frigate's 0.6).
STATIONARY_IOU = 0.6


@dataclass
class _Motion:
    """Whether one followed object stands still.

    Attributes:
        anchor: the box where it stopped (its first box, or the one of its last move).
        since: monotonic time of the detection at ``anchor``.
        stationary: whether it has stood there for the settings' ``stationary_s``.
    """

    anchor: tuple[float, float, float, float]
    since: float
    stationary: bool = False

    def see(self, box: tuple[float, float, float, float], now: float, after_s: float) -> bool | None:
        """Count one detection at ``box`` at monotonic time ``now``; the new ``stationary``
        state when it changed, else None. ``after_s`` 0 never makes an object stationary."""
        if float(box_iou(np.array([self.anchor]), np.array([box]))[0, 0]) < STATIONARY_IOU:
            self.anchor, self.since = box, now
            if self.stationary:
                self.stationary = False
                return False
            return None
        if not self.stationary and after_s > 0 and now - self.since >= after_s:
            self.stationary = True
            return True
        return None


class TrackEvents:
    """Track ids for one source's detections, and the events they make.

    Args:
        settings: the config's ``track`` settings.
        labels: the model's labels, index = class id.
        clock: turns a frame time (seconds since the epoch) into the events' time text.

    Example:
        >>> events = TrackEvents(TrackSettings(), ["person", "car"], iso_time)
        >>> detections, found = events.update(frame_detections, frame)   # each frame
        >>> last = events.end_all()                                       # at stop
    """

    def __init__(
        self, settings: TrackSettings, labels: Sequence[str], clock: Callable[[float], str]
    ) -> None:
        self.tracker = IouTracker(
            iou=settings.iou,
            max_lost_s=settings.max_lost_s,
            min_hits=settings.min_hits,
            start_conf=settings.start_conf,
        )
        self.labels = list(labels)
        self.clock = clock
        self.zone_hits = settings.zone_hits
        self.stationary_s = settings.stationary_s
        self._zones: dict[int, _Zones] = {}  # by track id, for each followed object
        self._motion: dict[int, _Motion] = {}  # by track id, likewise

    def update(
        self, detections: Sequence[Detection], frame: Frame
    ) -> tuple[tuple[Detection, ...], tuple[dict[str, Any], ...]]:
        """The detections with their track ids, and this frame's events.

        Args:
            detections: the frame's detections (with boxes and zones), best first.
            frame: the frame they were found on: its wall-clock time ``ts`` (the events'
                times), ``index`` (motion per source frame) and ``monotonic`` time (how long
                an object has been lost).
        """
        boxes = np.array([d.box for d in detections], dtype=np.float64).reshape(-1, 4)
        scores = np.array([d.score for d in detections], dtype=np.float64)
        classes = np.array([d.class_id for d in detections], dtype=np.int64)
        step = self.tracker.update(boxes, scores, classes, frame.ts, frame.index, frame.monotonic)
        started = {track.id for track in step.started}
        followed = {track.id: track for track in self.tracker.tracks if track.id}
        out = []
        updates = []
        for det, track_id in zip(detections, step.ids.tolist(), strict=True):
            if track_id:
                det = replace(det, track_id=track_id)
                if track_id in started:
                    self._zones[track_id] = _Zones(list(det.zones), list(det.zones))
                    self._motion[track_id] = _Motion(det.box, frame.monotonic)
                else:
                    entered, left = self._zones[track_id].see(det.zones, self.zone_hits)
                    if entered or left:
                        updates.append(self._update(followed[track_id], det, entered, left))
                    if self._motion[track_id].see(det.box, frame.monotonic, self.stationary_s) is not None:
                        updates.append(self._update(followed[track_id], det, [], []))
            out.append(det)
        events = [self._new(track, out) for track in step.started]
        events += updates
        events += [self._end(track) for track in step.ended]
        return tuple(out), tuple(events)

    def end_all(self) -> tuple[dict[str, Any], ...]:
        """``end`` events for every object still followed, which are forgotten (the source
        stopped); ``end`` is the time of each one's last detection."""
        return tuple(self._end(track) for track in self.tracker.end_all())

    def _new(self, track: Track, detections: Sequence[Detection]) -> dict[str, Any]:
        det = next(d for d in detections if d.track_id == track.id)
        return {
            "type": "new",
            "id": track.id,
            "label": det.label,
            "score": round(det.score, 5),
            "box": [round(float(v), 2) for v in track.box],
            "start": self.clock(track.first_ts),
            "zones": list(det.zones),
            "stationary": False,
        }

    def _update(self, track: Track, det: Detection, entered: list[str], left: list[str]) -> dict[str, Any]:
        return {
            "type": "update",
            "id": track.id,
            "label": self.labels[track.class_id],
            "score": round(det.score, 5),
            "box": [round(float(v), 2) for v in track.box],
            "start": self.clock(track.first_ts),
            "zones": list(self._zones[track.id].inside),
            "entered": entered,
            "left": left,
            "stationary": self._motion[track.id].stationary,
        }

    def _end(self, track: Track) -> dict[str, Any]:
        return {
            "type": "end",
            "id": track.id,
            "label": self.labels[track.class_id],
            "score": round(track.best_score, 5),
            "box": [round(float(v), 2) for v in track.box],
            "start": self.clock(track.first_ts),
            "end": self.clock(track.last_ts),
            "duration_s": round(track.duration_s, 3),
            "frames": track.hits,
            "zones": self._zones.pop(track.id).entered,
            "stationary": self._motion.pop(track.id).stationary,
        }
