"""The daemon's live state: one small thread-safe object shared by the loop and the sinks.

The main loop writes to :class:`DaemonStats` (a frame was processed, the source went
offline, the model is ready); sinks that report health read it: the HTTP sink's
``/healthz`` and ``/metrics`` call :meth:`DaemonStats.snapshot`, its live page and MJPEG
stream wait for new frames with :meth:`DaemonStats.wait_for_result`. Every method takes
one lock for a few attribute reads or writes, so readers never hold up the loop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from edgecnn.sinks.base import FrameResult

#: counters the source reports (see :class:`edgecnn.sources.threaded.ThreadedSource`)
SOURCE_COUNTERS = ("dropped", "reconnects", "stalls", "failures")


class DaemonStats:
    """Counters, timings and the latest result of a running daemon.

    Args:
        device: the device's name.
        fps_window: seconds over which :attr:`fps` counts frames.
        stale_after: a frame older than this many seconds makes :meth:`healthy` false.
        clock: monotonic clock (tests pass a fake one).

    Example:
        >>> stats = DaemonStats("pi-kitchen")
        >>> stats.snapshot()["frames"]
        0
    """

    def __init__(
        self,
        device: str,
        fps_window: float = 5.0,
        stale_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.fps_window = fps_window
        self.stale_after = stale_after
        self._clock = clock
        self._cond = threading.Condition()
        self._started = clock()
        self._model = ""
        self._source = ""
        self._ready = False
        self._status = "starting"
        self._source_state = "starting"
        self._source_detail = ""
        self._source_since = self._started
        self._frames = 0
        self._times: deque[float] = deque()
        self._last_frame_at: float | None = None
        self._first_frame_at: float | None = None
        self._latency: dict[str, float] = {}
        self._infer_total = 0.0
        self._latest: FrameResult | None = None
        self._counters: Callable[[], Mapping[str, int]] | None = None
        self._sinks: list[tuple[str, Any]] = []

    # -- written by the daemon -------------------------------------------------------------

    def set_names(self, model: str = "", source: str = "") -> None:
        """Record the model's and the source's names (shown in snapshots)."""
        with self._cond:
            self._model = model or self._model
            self._source = source or self._source

    def set_counters(self, provider: Callable[[], Mapping[str, int]]) -> None:
        """Read the source's counters (:data:`SOURCE_COUNTERS`) from ``provider`` at each snapshot."""
        with self._cond:
            self._counters = provider

    def set_sinks(self, sinks: list[tuple[str, Any]]) -> None:
        """The running sinks as ``(type, sink)`` pairs; snapshots report their ``dropped`` counts."""
        with self._cond:
            self._sinks = list(sinks)

    def set_ready(self) -> None:
        """The model is loaded and ran once: the daemon is up."""
        with self._cond:
            self._ready = True
            self._status = "running"

    def set_status(self, status: str) -> None:
        """The daemon's own state: ``starting``, ``running`` or ``stopping``."""
        with self._cond:
            self._status = status
            self._cond.notify_all()

    def set_source_state(self, state: str, detail: str = "") -> None:
        """The source's state (``online``, ``offline``, ``ended``, ``stopped``) and why."""
        with self._cond:
            if state != self._source_state:
                self._source_since = self._clock()
            self._source_state = state
            self._source_detail = detail

    def record(self, result: FrameResult) -> None:
        """One more frame processed; wakes :meth:`wait_for_result` callers."""
        now = self._clock()
        with self._cond:
            self._frames += 1
            self._last_frame_at = now
            if self._first_frame_at is None:
                self._first_frame_at = now
            self._times.append(now)
            while self._times and now - self._times[0] > self.fps_window:
                self._times.popleft()
            self._infer_total += result.latency_ms.get("infer", 0.0) / 1000
            for key, value in result.latency_ms.items():
                old = self._latency.get(key)
                self._latency[key] = value if old is None else old + 0.1 * (value - old)
            self._latest = result
            self._cond.notify_all()

    # -- read by sinks ---------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the model is loaded and ran once."""
        with self._cond:
            return self._ready

    @property
    def frames(self) -> int:
        """Frames processed so far."""
        with self._cond:
            return self._frames

    @property
    def source_state(self) -> str:
        """The source's state: ``starting``, ``online``, ``offline``, ``ended`` or ``stopped``."""
        with self._cond:
            return self._source_state

    def fps(self) -> float:
        """Frames processed per second over the last ``fps_window`` seconds (or since the first frame)."""
        now = self._clock()
        with self._cond:
            if self._first_frame_at is None:
                return 0.0
            recent = sum(1 for t in self._times if now - t <= self.fps_window)
            span = now - self._first_frame_at
            if span >= self.fps_window:
                return recent / self.fps_window
            return (recent - 1) / span if span > 0 else 0.0  # frames since the first, which opened the span

    def last_frame_age(self) -> float | None:
        """Seconds since the last processed frame (None before the first)."""
        with self._cond:
            return None if self._last_frame_at is None else self._clock() - self._last_frame_at

    def latest(self) -> FrameResult | None:
        """The latest result, with its image (None before the first frame)."""
        with self._cond:
            return self._latest

    def wait_for_result(self, after: int = 0, timeout: float | None = None) -> FrameResult | None:
        """Block until a result with ``frame > after`` exists; None on timeout or when stopping."""
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    (self._latest is not None and self._latest.frame > after) or self._status == "stopping"
                ),
                timeout,
            )
            latest = self._latest
            return latest if latest is not None and latest.frame > after else None

    def healthy(self) -> bool:
        """Ready, source online, and a frame processed within ``stale_after`` seconds."""
        age = self.last_frame_age()
        with self._cond:
            online = self._ready and self._source_state == "online" and self._status == "running"
        return online and age is not None and age <= self.stale_after

    def snapshot(self) -> dict[str, Any]:
        """Everything above as one JSON-ready dict (what ``/healthz`` and ``/metrics`` show)."""
        fps = self.fps()
        age = self.last_frame_age()
        healthy = self.healthy()
        with self._cond:
            counters = dict.fromkeys(SOURCE_COUNTERS, 0)
            provider, sinks, now = self._counters, list(self._sinks), self._clock()
            latest = self._latest
            out: dict[str, Any] = {
                "device": self.device,
                "model": self._model,
                "source": self._source,
                "status": self._status,
                "ready": self._ready,
                "healthy": healthy,
                "uptime_s": round(now - self._started, 3),
                "source_state": self._source_state,
                "source_detail": self._source_detail,
                "source_state_age_s": round(now - self._source_since, 3),
                "frames": self._frames,
                "fps": round(fps, 3),
                "last_frame_age_s": None if age is None else round(age, 3),
                "latency_ms": {k: round(v, 3) for k, v in self._latency.items()},
                "inference_ms": round(self._latency.get("infer", 0.0), 3),
                "inference_seconds_total": round(self._infer_total, 3),
                "detections": 0 if latest is None else len(latest.detections),
            }
        if provider is not None:
            counters.update({k: int(v) for k, v in provider().items() if k in counters})
        out.update(counters)
        out["sinks"] = {name: {"dropped": int(getattr(sink, "dropped", 0))} for name, sink in sinks}
        return out


#: The same object under the name the sinks' docs use for it.
Health = DaemonStats
