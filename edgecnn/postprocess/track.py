"""Object tracking: the same object keeps its id from frame to frame.

An IoU tracker in the manner of SORT (Bewley et al., 2016), without appearance features, so
it costs well under a millisecond per frame for a few objects. Each track predicts where its
box is now from its last box and its velocity (constant velocity, smoothed over the frames
it was matched on). Detections are matched to predictions by IoU, best pair first (greedy,
pairs with IoU at least ``iou``): first each detection to a track of its own class, then
what is left regardless of class, because detectors flip between similar classes from one
frame to the next (as Ultralytics' trackers, which ignore classes); a track's class is the
one it was detected as most often. Tracks that have their id are matched before tentative
ones (ByteTrack's order). Only a detection scored at least ``start_conf`` starts a track
(ByteTrack's rule: a weak detection can continue a track, not begin one), and only where it
overlaps no track by ``iou`` or more: there it is a duplicate the detector gave of an object
already followed (another class's box of the same object, which class-aware NMS keeps). A
track gets its id once it has been matched on ``min_hits`` frames in a row, so a detection
seen once never gets one, and it ends when no detection has matched it for ``max_lost_s``
seconds (an object behind a pole keeps its id). Ids count up from 1 and are never reused
while the tracker lives.

An object that stops short (a car pulling up) is not where its velocity predicts: a track
that was matched on the last frame and is left unmatched by its prediction gets a last
round, with its last box as the prediction (standing still) and strong detections only, and
a match there restarts its velocity from that move. Without it the stopped object would
lose its track and, standing on the lost track's last box, could not start another (it
would be a duplicate) until the lost track ended. Tracks lost for longer, and weak
detections, are left out of that round: a lost track kept at its last box would take the
stray duplicate boxes a detector gives where objects overlap.

Motion is measured in frames when frame numbers are given (a video file is read faster
than it was filmed, in bursts, so capture times would give false speeds) and in seconds
otherwise; ``max_lost_s`` is always seconds. Seconds are those of a monotonic clock when one
is given (``mono``): the wall-clock time ``ts`` of a board without a real-time clock steps
when NTP sets it, and a step back would keep lost tracks that much longer, a step forward
end them all at once. ``ts`` is then only kept as the tracks' first and last times. Pure
numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["IouTracker", "Track", "TrackStep", "box_iou"]


@dataclass
class Track:
    """One followed object.

    Attributes:
        id: the track id (1, 2, ...); 0 while the track is tentative (fewer than
            ``min_hits`` matches).
        class_id: the class it was detected as most often (the earliest of equals).
        box: the last matched box, ``x1 y1 x2 y2``.
        velocity: of the box's corners, pixels per frame (or per second without frame
            numbers).
        first_ts: time of the first detection, seconds (``ts``, the wall clock).
        last_ts: time of the last matched detection, as ``ts`` gave it (also when the wall
            clock stepped back meanwhile).
        first_mono: time of the first detection on the monotonic clock (``mono``; ``ts``
            without one).
        last_mono: time of the last matched detection on that clock (never decreasing); a
            lost track ends by it.
        hits: frames it was matched on.
        best_score: the highest score of its detections.
        last_frame: the frame number of the last match (None without frame numbers).
        votes: how many of its detections were of each class.
    """

    id: int
    class_id: int
    box: np.ndarray
    velocity: np.ndarray
    first_ts: float
    last_ts: float
    first_mono: float
    last_mono: float
    hits: int
    best_score: float
    last_frame: int | None = None
    votes: dict[int, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last matched detection, on the monotonic clock."""
        return self.last_mono - self.first_mono

    def vote(self, class_id: int) -> None:
        """Count one detection of ``class_id``; :attr:`class_id` becomes the most frequent."""
        self.votes[class_id] = self.votes.get(class_id, 0) + 1
        if self.votes[class_id] > self.votes.get(self.class_id, 0):
            self.class_id = class_id


@dataclass(frozen=True)
class TrackStep:
    """What one :meth:`IouTracker.update` found.

    Attributes:
        ids: ``(N,)`` int64, the track id of each detection given; 0 for a detection whose
            track is still tentative.
        started: tracks that got their id on this frame.
        ended: tracks that ended on this frame (unmatched for longer than ``max_lost_s``).
    """

    ids: np.ndarray
    started: tuple[Track, ...]
    ended: tuple[Track, ...]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``(N, 4)`` box in ``a`` with every ``(M, 4)`` box in ``b`` (``x1 y1 x2 y2``),
    as an ``(N, M)`` array; 0 for boxes without area."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(1, -1, 4)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = w * h
    area_a = np.clip(a[..., 2] - a[..., 0], 0.0, None) * np.clip(a[..., 3] - a[..., 1], 0.0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0.0, None) * np.clip(b[..., 3] - b[..., 1], 0.0, None)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0.0)


class IouTracker:
    """Follow detections across frames; see the module docstring.

    Args:
        iou: least IoU between a track's predicted box and a detection to match them.
        max_lost_s: seconds a track may go unmatched before it ends.
        min_hits: matched frames before a track gets its id (1: at once).
        start_conf: least score of a detection that starts a track.
        smoothing: weight of the old velocity when a match gives a new one (0: the newest
            move alone).
    """

    def __init__(
        self,
        iou: float = 0.3,
        max_lost_s: float = 2.0,
        min_hits: int = 2,
        start_conf: float = 0.5,
        smoothing: float = 0.5,
    ) -> None:
        if not 0.0 < iou <= 1.0:
            raise ValueError(f"iou must be in (0, 1], got {iou}")
        if not max_lost_s >= 0.0:
            raise ValueError(f"max_lost_s must be >= 0, got {max_lost_s}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        if not 0.0 <= start_conf <= 1.0:
            raise ValueError(f"start_conf must be in [0, 1], got {start_conf}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.iou = iou
        self.max_lost_s = max_lost_s
        self.min_hits = min_hits
        self.start_conf = start_conf
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self._last_id = 0
        self._matched: set[int] = set()  # ids of the tracks matched on the last frame

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        ts: float,
        frame: int | None = None,
        mono: float | None = None,
    ) -> TrackStep:
        """Match one frame's detections to the tracks, start and end tracks.

        Args:
            boxes: ``(N, 4)`` ``x1 y1 x2 y2`` in frame pixels.
            scores: ``(N,)`` scores.
            class_ids: ``(N,)`` class ids.
            ts: the frame's capture time, seconds since the epoch (the tracks' first and last
                times).
            frame: the frame's number from its source, counting frames the caller skipped
                (motion is then per frame); None: motion per second of ``mono``. A number
                that does not grow (the source restarted) counts as the next frame.
            mono: the frame's capture time on a monotonic clock (:func:`time.monotonic`):
                tracks lost for more than ``max_lost_s`` of it end. None: ``ts`` serves
                (frames given in time order; a time before the last frame's counts as no
                time passed).

        Returns:
            The detections' track ids and the tracks started and ended on this frame.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        n = len(boxes)
        if len(scores) != n or len(class_ids) != n:
            raise ValueError(f"got {n} boxes, {len(scores)} scores and {len(class_ids)} class ids")
        now = ts if mono is None else mono
        tracks = self.tracks
        last_box = np.array([t.box for t in tracks], dtype=np.float64).reshape(-1, 4)
        velocity = np.array([t.velocity for t in tracks], dtype=np.float64).reshape(-1, 4)
        if frame is None:
            elapsed = np.maximum(now - np.array([t.last_mono for t in tracks], dtype=np.float64), 0.0)
        else:
            last = np.array([frame - 1 if t.last_frame is None else t.last_frame for t in tracks])
            elapsed = np.where(last < frame, frame - last, 1).astype(np.float64)
        predicted = last_box + velocity * elapsed[:, None]
        track_cls = np.array([t.class_id for t in tracks], dtype=np.int64)
        confirmed = np.array([t.id > 0 for t in tracks], dtype=bool)
        strong = scores >= self.start_conf
        just_lost = np.array([t.id in self._matched for t in tracks], dtype=bool)  # matched last frame
        rows, cols, still = self._match(
            predicted, last_box, track_cls, confirmed, just_lost, boxes, class_ids, strong
        )
        # the matched tracks move to their detections; velocity from the move, smoothed
        moving = elapsed[rows] > 0.0
        moved = (boxes[cols] - last_box[rows]) / np.where(moving, elapsed[rows], 1.0)[:, None]
        first_move = np.array([tracks[k].hits == 1 for k in rows.tolist()], dtype=bool)
        smoothed = self.smoothing * velocity[rows] + (1.0 - self.smoothing) * moved
        new_velocity = np.where(first_move[:, None], moved, smoothed)
        new_velocity = np.where(moving[:, None], new_velocity, velocity[rows])
        new_velocity = np.where(still[:, None] & moving[:, None], moved, new_velocity)  # stopped short
        ids = np.zeros(n, dtype=np.int64)
        started: list[Track] = []
        for i, (k, d) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
            track = tracks[k]
            track.box = boxes[d].copy()
            track.velocity = new_velocity[i]
            track.last_ts = ts
            track.last_mono = max(now, track.last_mono)
            track.last_frame = frame
            track.hits += 1
            track.vote(int(class_ids[d]))
            track.best_score = max(track.best_score, float(scores[d]))
            if track.id == 0 and track.hits >= self.min_hits:
                self._last_id += 1
                track.id = self._last_id
                started.append(track)
            ids[d] = track.id
        matched = np.zeros(len(tracks), dtype=bool)
        matched[rows] = True
        ended: list[Track] = []
        kept: list[Track] = []
        for k, track in enumerate(tracks):
            if matched[k]:
                kept.append(track)
            elif track.id == 0:
                continue  # a tentative track must be matched on every frame until it has its id
            elif now - track.last_mono > self.max_lost_s:
                ended.append(track)
            else:
                kept.append(track)
        unmatched = strong.copy()
        unmatched[cols] = False
        if kept and unmatched.any():  # a duplicate of a followed object starts nothing
            followed = np.array([t.box for t in kept], dtype=np.float64)
            unmatched &= box_iou(boxes, followed).max(axis=1) < self.iou
        for d in np.flatnonzero(unmatched).tolist():
            class_id, score = int(class_ids[d]), float(scores[d])
            track = Track(
                id=0,
                class_id=class_id,
                box=boxes[d].copy(),
                velocity=np.zeros(4),
                first_ts=ts,
                last_ts=ts,
                first_mono=now,
                last_mono=now,
                hits=1,
                best_score=score,
                last_frame=frame,
                votes={class_id: 1},
            )
            if self.min_hits <= 1:
                self._last_id += 1
                track.id = self._last_id
                started.append(track)
                ids[d] = track.id
            kept.append(track)
        self.tracks = kept
        self._matched = {int(i) for i in ids.tolist() if i}
        return TrackStep(ids, tuple(started), tuple(ended))

    def end_all(self) -> tuple[Track, ...]:
        """End every track (the source stopped); returns those that had an id."""
        ended = tuple(track for track in self.tracks if track.id)
        self.tracks = []
        return ended

    def _match(
        self,
        predicted: np.ndarray,
        last_box: np.ndarray,
        track_cls: np.ndarray,
        confirmed: np.ndarray,
        just_lost: np.ndarray,
        boxes: np.ndarray,
        class_ids: np.ndarray,
        strong: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matched ``(track indices, detection indices, matched on the last box)``: pairs with
        IoU at least :attr:`iou`, best pair first, in rounds: ``confirmed`` tracks before
        tentative ones, within those ``strong`` detections of the track's class, strong ones of
        another class, then the weak ones likewise; then the tracks left that were matched on
        the last frame (``just_lost``), on their last boxes instead of the predicted ones (an
        object that stopped short), with strong detections only (of their class first). Each
        track and detection in one pair at most."""
        none = np.zeros(0, dtype=np.int64)
        if not len(predicted) or not len(boxes):
            return none, none, np.zeros(0, dtype=bool)
        iou = box_iou(predicted, boxes)
        same = track_cls[:, None] == class_ids[None, :]
        pairs: list[tuple[int, int, bool]] = []
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        kinds = (same & strong, ~same & strong, same & ~strong, ~same & ~strong)
        tiers = (confirmed[:, None], ~confirmed[:, None])
        rounds = [(allowed, iou, False) for allowed in (tier & kind for tier in tiers for kind in kinds)]
        if just_lost.any():
            stood = box_iou(last_box, boxes)
            rounds += [(just_lost[:, None] & kind, stood, True) for kind in kinds[:2]]  # strong detections
        for allowed, overlap, still in rounds:
            rows, cols = np.nonzero(allowed & (overlap >= self.iou))
            # best pair first; equal IoU: the older track (lower index), then the earlier detection
            order = np.lexsort((cols, rows, -overlap[rows, cols]))
            for k, d in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
                if k in used_tracks or d in used_dets:
                    continue
                used_tracks.add(k)
                used_dets.add(d)
                pairs.append((k, d, still))
        if not pairs:
            return none, none, np.zeros(0, dtype=bool)
        matched = np.array(pairs, dtype=np.int64)
        return matched[:, 0], matched[:, 1], matched[:, 2].astype(bool)
