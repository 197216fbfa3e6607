"""Tracking in the daemon: track ids on detections, and ``new`` / ``end`` events for sinks.

With ``track:`` in the device config, every frame's detections go through an
:class:`~edgecnn.postprocess.track.IouTracker` on the finish thread, after masks and zones.
A detection of a followed object gets its ``track_id``; the frame on which an object gets
its id carries a ``new`` event, and the frame on which it has been gone for ``max_lost_s``
an ``end`` event (Frigate's event life cycle, without ``update``)::

    {"type": "new", "id": 7, "label": "person", "score": 0.81, "box": [x1, y1, x2, y2],
     "start": "2026-12-01T10:00:00.100Z", "zones": ["driveway"]}
    {"type": "end", "id": 7, "label": "person", "score": 0.93, "box": [...],
     "start": "2026-12-01T10:00:00.100Z", "end": "2026-12-01T10:00:09.700Z",
     "duration_s": 9.6, "frames": 48, "zones": ["driveway", "porch"]}

In ``new``, ``score``, ``box`` and ``zones`` are those of the detection that gave the
object its id (``start`` is the time of its first detection); in ``end``, ``label`` is the
class the object was detected as most often, ``score`` the best score it had, ``box`` its
last box and ``zones`` every zone it stood in while it had its id, in the order it entered
them. Motion is measured per frame of the source (``Frame.index``), not per second of
capture time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edgecnn.config.device import TrackSettings
from edgecnn.postprocess.track import IouTracker, Track
from edgecnn.sinks.base import Detection


class TrackEvents:
    """Track ids for one source's detections, and the events they make.

    Args:
        settings: the config's ``track`` settings.
        labels: the model's labels, index = class id.
        clock: turns a frame time (seconds since the epoch) into the events' time text.
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
        self._zones: dict[int, list[str]] = {}  # zones each followed object has stood in

    def update(
        self, detections: Sequence[Detection], ts: float, frame: int | None = None
    ) -> tuple[tuple[Detection, ...], tuple[dict[str, Any], ...]]:
        """The detections with their track ids, and this frame's events (``new`` first).

        Args:
            detections: one frame's detections (with boxes), best first.
            ts: the frame's capture time, seconds since the epoch.
            frame: the source's frame number (frames the daemon skipped counted), so that
                motion is per frame; None: per second.
        """
        boxes = np.array([d.box for d in detections], dtype=np.float64).reshape(-1, 4)
        scores = np.array([d.score for d in detections], dtype=np.float64)
        classes = np.array([d.class_id for d in detections], dtype=np.int64)
        step = self.tracker.update(boxes, scores, classes, ts, frame)
        out = []
        for det, track_id in zip(detections, step.ids.tolist(), strict=True):
            if track_id:
                seen = self._zones.setdefault(track_id, [])
                seen.extend(z for z in det.zones if z not in seen)
                det = replace(det, track_id=track_id)
            out.append(det)
        events = [self._new(track, out) for track in step.started]
        events += [self._end(track) for track in step.ended]
        return tuple(out), tuple(events)

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
            "duration_s": round(track.last_ts - track.first_ts, 3),
            "frames": track.hits,
            "zones": self._zones.pop(track.id, []),
        }
