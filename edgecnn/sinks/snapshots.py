"""Snapshots sink: JPEG files, with boxes drawn, of frames that have detections.

Rate-limited on the monotonic clock (a wall-clock step, as when NTP corrects a Pi without
a real-time clock, neither stops nor floods snapshots; file names keep the capture time):
at most one snapshot every ``min_interval_s`` seconds, or with ``per_label`` one per label
(a frame is saved when one of its labels is due, and only the due labels restart their
wait). The directory is bounded by ``max_files`` and ``max_bytes``: after each write the
oldest snapshots are deleted until both hold. Only files named like snapshots are counted
or deleted.

With ``per_object`` (and ``track:`` on), the trigger is the objects instead of the frames:
one snapshot of each followed object, on the frame where it gets its id (its ``new`` event;
Frigate's event snapshots), named ``..._<label>-<id>.jpg``, without a rate limit (the
directory bounds still hold).

A failed write (a full disk, say) leaves no temporary file behind and counts in
``dropped``; it is logged once per outage, at ERROR, and the first write that works again
is logged at INFO with the number dropped meanwhile. A directory removed while running is
created again before the next write.

:meth:`SnapshotSink.emit` decides and queues (one frame reference); drawing, encoding and
writing happen on the sink's own thread. A frame that does not fit in the queue is
dropped, counted in ``dropped``, and does not use up the rate limit.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgecnn.sinks._outage import Outage
from edgecnn.sinks._writer import QueueWriter
from edgecnn.sinks.base import FrameResult, Sink

log = logging.getLogger(__name__)

#: names this sink writes (and the only files it counts or deletes): <ts>_<frame>_<labels>.jpg
NAME_RE = re.compile(r"^\d{8}T\d{6}\.\d{3}Z_\d+_[\w+-]*\.jpg$")
#: temporary names a write goes through (a crash mid-write may leave one; start() removes them)
TMP_RE = re.compile(r"^\.\d{8}T\d{6}\.\d{3}Z_\d+_[\w+-]*\.jpg\.tmp$")


class SnapshotsConfig(BaseModel):
    """Settings of the ``snapshots`` sink."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["snapshots"] = Field(description="Selects this sink.")
    directory: Path | None = Field(
        None, description="Where snapshots go; default: <state dir>/snapshots (systemd: $STATE_DIRECTORY)."
    )
    min_interval_s: float = Field(10.0, ge=0, le=86_400, description="Least seconds between snapshots.")
    per_label: bool = Field(False, description="Apply min_interval_s to each label on its own.")
    labels: list[str] = Field([], description="Labels that trigger a snapshot; empty: any label.")
    min_score: float = Field(0.0, ge=0, le=1, description="Least score of a triggering detection.")
    max_files: int = Field(1000, ge=1, le=1_000_000, description="Most snapshot files kept; oldest go first.")
    max_bytes: int = Field(
        200 * 1024 * 1024, ge=1024, le=2**40, description="Most bytes of snapshots kept; oldest go first."
    )
    jpeg_quality: int = Field(85, ge=10, le=100, description="JPEG quality.")
    draw_boxes: bool = Field(True, description="Draw boxes and labels on the snapshot.")
    per_object: bool = Field(
        False,
        description="With track: one snapshot per followed object, when it gets its id, instead of "
        "rate-limited frames.",
    )
    queue_size: int = Field(4, ge=1, le=64, description="Frames waiting for the writer; more are dropped.")


def snapshot_directory(config: SnapshotsConfig, state_dir: Path = Path(".")) -> Path:
    """Where the sink writes: ``config.directory``, else ``<state_dir>/snapshots``."""
    return config.directory or Path(state_dir) / "snapshots"


def _capture_time(ts: str) -> datetime:
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class SnapshotSink(Sink):
    """Save rate-limited JPEG snapshots of frames with detections into a bounded directory.

    Args:
        config: the sink's settings.
        state_dir: the daemon's writable directory (used when ``config.directory`` is unset).
        clock: monotonic seconds for the rate limit (tests pass a fake one).

    Attributes:
        written: snapshots written.
        deleted: old snapshots deleted to keep the bounds.
        dropped: snapshots not taken because the writer was busy or a write failed.
    """

    def __init__(self, config: SnapshotsConfig, *, state_dir: Path = Path("."),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.directory = snapshot_directory(config, state_dir)
        self.written = 0
        self.deleted = 0
        self._busy = 0  # frames that found the queue full
        self._clock = clock
        self._last: dict[str | None, float] = {}
        outage = Outage(
            log,
            str(self.directory),
            "snapshots: cannot write to %s: %s; dropping snapshots until a write works",
            "snapshots: writing to %s again; %d snapshots dropped meanwhile",
            recovered_level=logging.INFO,
        )
        self._writer = QueueWriter("snapshots", lambda item: self._write(*item), outage, config.queue_size)
        self._labels = set(config.labels)
        self._files: deque[tuple[Path, int]] = deque()
        self._bytes = 0

    def start(self) -> None:
        """Create the directory, remove stale temporary files, index the snapshots there, start the writer."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.iterdir():
            if TMP_RE.match(path.name):
                path.unlink(missing_ok=True)
        found = [(p.stat().st_mtime, p.name, p) for p in self.directory.iterdir() if NAME_RE.match(p.name)]
        for _, _, path in sorted(found):
            self._add(path)
        self._prune()
        self._writer.start()

    @property
    def dropped(self) -> int:  # type: ignore[override]
        """Snapshots not taken: the writer was busy, or the write failed."""
        return self._busy + self._writer.failed

    def emit(self, result: FrameResult) -> None:
        """Queue the frame if it has a triggering detection and the rate limit allows (with
        ``per_object``: if an object got its id on it); returns at once."""
        if result.image is None:
            return
        if self.config.per_object:
            self._emit_objects(result)
            return
        labels = {d.label for d in result.detections
                  if d.score >= self.config.min_score and (not self._labels or d.label in self._labels)}
        if not labels:
            return
        now = self._clock()
        keys: list[str | None] = sorted(labels) if self.config.per_label else [None]
        due = [k for k in keys if k not in self._last or now - self._last[k] >= self.config.min_interval_s]
        if not due:
            return
        if not self._writer.put((result, sorted(labels))):
            self._busy += 1
            return
        for key in due:
            self._last[key] = now

    def _emit_objects(self, result: FrameResult) -> None:
        """Queue the frame once per new object that triggers (one file each)."""
        for event in result.events:
            label = event.get("label", "")
            if event.get("type") != "new" or (self._labels and label not in self._labels):
                continue
            if event.get("score", 0.0) < self.config.min_score:
                continue
            if not self._writer.put((result, [f"{label}-{event['id']}"])):
                self._busy += 1

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (within ``timeout`` seconds) and stop the writer."""
        self._writer.stop(timeout)

    def _write(self, result: FrameResult, labels: list[str]) -> None:
        from edgecnn.sinks.draw import draw_detections, encode_jpeg  # OpenCV: not needed to validate

        assert result.image is not None
        image = draw_detections(result.image, result.detections) if self.config.draw_boxes else result.image
        data = encode_jpeg(image, self.config.jpeg_quality)
        stamp = _capture_time(result.ts).astimezone(UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
        tag = "+".join(re.sub(r"[^\w-]", "-", label) for label in labels)
        path = self.directory / f"{stamp}_{result.frame:08d}_{tag}.jpg"
        if not self.directory.is_dir():  # removed while running
            self.directory.mkdir(parents=True, exist_ok=True)
            log.warning("snapshots: %s was removed; created it again", self.directory)
            self._files.clear()
            self._bytes = 0
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see a half-written JPEG
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk must not fill up with partial files
            raise
        self.written += 1
        self._add(path)
        self._prune()

    def _add(self, path: Path) -> None:
        size = path.stat().st_size
        self._files.append((path, size))
        self._bytes += size

    def _prune(self) -> None:
        cfg = self.config
        while self._files and (len(self._files) > cfg.max_files or self._bytes > cfg.max_bytes):
            path, size = self._files.popleft()
            self._bytes -= size
            try:
                path.unlink()
                self.deleted += 1
            except FileNotFoundError:
                pass  # someone else removed it
