"""Run a :class:`~edgecnn.sources.base.Source` on its own thread, and keep it running.

:class:`ThreadedSource` is what the daemon reads from. It

* captures on a worker thread, so that capture overlaps inference, and hands over only
  the newest frame: a frame not taken before the next one arrives is dropped and counted
  (``realtime``); for files and folders (not ``realtime``) the worker waits instead, so
  every frame is processed;
* treats an open or read error, an empty frame or one of the wrong type or shape as a
  failure: the source goes ``offline``, its object is stopped, and a new one is created
  after a back-off that doubles from ``reconnect_initial`` up to ``reconnect_max``
  (at most 30 s) and resets with the next good frame;
* watches every open and read from a supervisor thread: one that blocks longer than
  ``stall_timeout`` marks the source offline and abandons that worker for a fresh one.
  Python cannot kill a thread, so the abandoned worker stops its source and exits when
  its call finally returns; at most ``max_hung`` of them may be pending, so threads and
  file descriptors do not pile up when a camera keeps hanging;
* reports ``online`` / ``offline`` / ``ended`` / ``stopped`` transitions through
  ``on_status(state, detail)``, called from its own threads (keep it quick);
* with ``prepare``, runs it on every good frame on the capture thread and hands over what
  it returns, so that work on a frame (the daemon turns it into the input tensor) overlaps
  inference without a thread and a hand-over of its own. ``prepare`` returns None to skip
  a frame; an exception it raises is re-raised by :meth:`ThreadedSource.read`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecnn.sources.base import EndOfStream, Frame, NoFrameYet, Source, frame_problem

log = logging.getLogger(__name__)

StatusCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class _Failed:
    """An exception ``prepare`` raised, handed over in place of the frame."""

    error: Exception


def _one_line(exc: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


class ThreadedSource:
    """A self-healing, newest-frame-only wrapper around a source factory.

    Args:
        factory: creates a new, not yet started :class:`Source` (called again after failures).
        name: the source's name for logs and status (default: the first source's ``name``).
        stall_timeout: seconds an open or read may block before the source counts as hung.
        reconnect_initial: first back-off in seconds after a failure.
        reconnect_max: longest back-off in seconds (the doubling stops there; at most 30).
        realtime: drop frames nobody took in time (True) or wait until they are taken (False).
        on_status: called with ``(state, detail)`` on every state change.
        max_hung: hung workers allowed to linger before no new one is started.
        prepare: run on each good frame on the capture thread; :meth:`read` returns its
            result instead of the frame (None: skip the frame).

    Example:
        >>> src = ThreadedSource(lambda: OpenCVSource(OpenCVConfig(type="opencv", input=0)))
        >>> src.start()
        >>> frame = src.read(timeout=1.0)   # newest frame, or None after 1 s
        >>> src.stop()
    """

    def __init__(
        self,
        factory: Callable[[], Source],
        *,
        name: str = "source",
        stall_timeout: float = 20.0,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        realtime: bool = True,
        on_status: StatusCallback | None = None,
        max_hung: int = 2,
        prepare: Callable[[Frame], Any] | None = None,
    ) -> None:
        self.name = name
        self.stall_timeout = stall_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = min(30.0, max(reconnect_max, reconnect_initial))
        self.realtime = realtime
        self.max_hung = max_hung
        self._factory = factory
        self._on_status = on_status
        self._prepare = prepare
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._gen = 0  # the current worker's generation; older workers are abandoned
        self._op: tuple[int, str, float] | None = None  # (generation, "open"/"read", start) in progress
        self._slot: Any = None  # a frame (or what prepare made of it) not read yet
        self._ended = False
        self._state = "starting"
        self._detail = ""
        self._delay = reconnect_initial
        self._worker: threading.Thread | None = None
        self._hung: list[threading.Thread] = []
        self._supervisor: threading.Thread | None = None
        #: frames handed over to :meth:`read`
        self.frames = 0
        #: frames replaced by a newer one before anybody read them
        self.dropped = 0
        #: times the source came back online after being offline
        self.reconnects = 0
        #: opens or reads that blocked longer than ``stall_timeout``
        self.stalls = 0
        #: failed opens and reads, bad frames and stalls
        self.failures = 0

    # -- consumer side -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``starting``, ``online``, ``offline``, ``ended`` or ``stopped``."""
        with self._cond:
            return self._state

    @property
    def detail(self) -> str:
        """Why the source is in its state (the last error while offline)."""
        with self._cond:
            return self._detail

    def counters(self) -> dict[str, int]:
        """``frames``, ``dropped``, ``reconnects``, ``stalls``, ``failures``, ``hung`` (lingering workers)."""
        with self._cond:
            hung = sum(t.is_alive() for t in self._hung)
            return {
                "frames": self.frames,
                "dropped": self.dropped,
                "reconnects": self.reconnects,
                "stalls": self.stalls,
                "failures": self.failures,
                "hung": hung,
            }

    def start(self) -> None:
        """Start the supervisor and the first worker; returns at once (opening happens on the worker)."""
        if self._supervisor is not None:
            raise RuntimeError("ThreadedSource.start() called twice")
        with self._cond:
            self._spawn_worker()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"source-watch-{self.name}", daemon=True
        )
        self._supervisor.start()

    def read(self, timeout: float | None = None) -> Any:
        """The newest frame not read yet (with ``prepare``: what it returned for the frame);
        None if none arrives within ``timeout`` seconds.

        Raises:
            EndOfStream: the source ended (a file without ``loop``) and every frame was read.
            Exception: what ``prepare`` raised.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: self._slot is not None or self._ended or self._stopping.is_set(), timeout
            )
            item, self._slot = self._slot, None
            if item is not None:
                self._cond.notify_all()  # a worker waiting to hand over (not realtime) may go on
            elif self._ended:
                raise EndOfStream(self.name)
        if isinstance(item, _Failed):
            raise item.error
        return item

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the threads and release the source; a worker stuck in a read is abandoned."""
        self._stopping.set()
        with self._cond:
            self._gen += 1
            self._cond.notify_all()
            worker = self._worker
        deadline = time.monotonic() + timeout
        for thread in (self._supervisor, worker):
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._set_state("stopped", "")

    def __enter__(self) -> ThreadedSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- worker side -------------------------------------------------------------------------

    def _current(self, gen: int) -> bool:
        return gen == self._gen and not self._stopping.is_set()

    def _spawn_worker(self, back_off: bool = False) -> None:
        """Start a worker for the current generation (caller holds the lock)."""
        gen = self._gen
        self._worker = threading.Thread(
            target=self._work, args=(gen, back_off), name=f"source-{self.name}-{gen}", daemon=True
        )
        self._worker.start()

    def _begin(self, gen: int, what: str) -> None:
        with self._cond:
            if gen == self._gen:
                self._op = (gen, what, time.monotonic())

    def _end(self, gen: int) -> None:
        with self._cond:
            if self._op is not None and self._op[0] == gen:
                self._op = None

    def _work(self, gen: int, back_off: bool) -> None:
        source: Source | None = None
        try:
            if back_off:  # replacing a hung worker
                self._back_off(gen)
            while self._current(gen):
                if source is None:
                    source = self._open(gen)
                    if source is None:
                        continue
                self._begin(gen, "read")
                try:
                    frame = source.read()
                except EndOfStream:
                    self._end(gen)
                    if self._current(gen):
                        self._finish()
                    return
                except NoFrameYet:
                    self._end(gen)
                    continue
                except Exception as exc:
                    self._end(gen)
                    problem = f"read failed: {_one_line(exc)}"
                else:
                    self._end(gen)
                    problem = frame_problem(frame)
                    if problem is None:
                        item = self._prepared(frame)
                        if item is None or self._hand_over(gen, item):
                            continue
                if not self._current(gen):
                    break
                if problem is not None:
                    _stop_quietly(source)
                    source = None
                    self._fail(gen, problem)
                    self._back_off(gen)
        finally:
            if source is not None:
                _stop_quietly(source)

    def _open(self, gen: int) -> Source | None:
        """Create and start a source; on failure report it, back off and return None."""
        self._begin(gen, "open")
        source = None
        try:
            source = self._factory()
            source.start()
        except Exception as exc:
            self._end(gen)
            if source is not None:
                _stop_quietly(source)
            if self._current(gen):
                self._fail(gen, f"cannot open: {_one_line(exc)}")
                self._back_off(gen)
            return None
        self._end(gen)
        if not self._current(gen):
            _stop_quietly(source)
            return None
        if self.name == "source":
            self.name = source.name
        return source

    def _prepared(self, frame: Frame) -> Any:
        """``prepare(frame)`` (the frame itself without ``prepare``); an exception, wrapped."""
        if self._prepare is None:
            return frame
        try:
            return self._prepare(frame)
        except Exception as exc:  # not the source's fault: the consumer decides
            return _Failed(exc)

    def _hand_over(self, gen: int, item: Any) -> bool:
        """Put ``item`` in the slot (dropping an unread one if realtime); False if abandoned."""
        came_back = False
        with self._cond:
            if not self.realtime:
                self._cond.wait_for(lambda: self._slot is None or not self._current(gen))
            if not self._current(gen):
                return False
            if self._slot is not None:
                self.dropped += 1
            self._slot = item
            self.frames += 1
            self._delay = self.reconnect_initial
            if self._state != "online":
                came_back = self._state == "offline"
                if came_back:
                    self.reconnects += 1
            self._cond.notify_all()
        if self.state != "online":
            self._set_state("online", "reconnected" if came_back else "")
        return True

    def _fail(self, gen: int, problem: str) -> None:
        with self._cond:
            if gen != self._gen:
                return
            self.failures += 1
        log.warning("source %s: %s", self.name, problem)
        self._set_state("offline", problem)

    def _back_off(self, gen: int) -> None:
        with self._cond:
            delay = self._delay
            self._delay = min(self._delay * 2, self.reconnect_max)
        # wake early on stop or when this worker is abandoned
        deadline = time.monotonic() + delay
        with self._cond:
            self._cond.wait_for(lambda: not self._current(gen), max(0.0, deadline - time.monotonic()))

    def _finish(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        self._set_state("ended", "no more frames")

    def _set_state(self, state: str, detail: str) -> None:
        with self._cond:
            if self._state == state and self._detail == detail:
                return
            if self._state == "stopped":
                return
            changed = self._state != state
            self._state, self._detail = state, detail
        if changed:
            log.info("source %s: %s%s", self.name, state, f" ({detail})" if detail else "")
        if self._on_status is not None:
            try:
                self._on_status(state, detail)
            except Exception:
                log.exception("source status callback failed")

    # -- supervisor --------------------------------------------------------------------------

    def _supervise(self) -> None:
        tick = min(0.25, self.stall_timeout / 4)
        while not self._stopping.wait(tick):
            stalled = None
            with self._cond:
                op = self._op
                if op is not None and op[0] == self._gen and time.monotonic() - op[2] > self.stall_timeout:
                    stalled = op[1]
                    self._op = None
                    self.stalls += 1
                    self.failures += 1
                    if self._worker is not None:
                        self._hung.append(self._worker)
                    self._worker = None
                    self._gen += 1
                    self._cond.notify_all()
                self._hung = [t for t in self._hung if t.is_alive()]
                need_worker = self._worker is None and not self._ended
                hung = len(self._hung)
                if need_worker and hung < self.max_hung:
                    self._spawn_worker(back_off=True)
                    need_worker = False
            if stalled is not None:
                problem = f"{stalled} blocked for more than {self.stall_timeout:g} s"
                log.warning("source %s: %s; replacing it", self.name, problem)
                self._set_state("offline", problem)
            elif need_worker:
                self._set_state("offline", f"waiting for {hung} hung reads to return")


def _stop_quietly(source: Source) -> None:
    try:
        source.stop()
    except Exception as exc:
        log.debug("stopping source %s failed: %s", getattr(source, "name", "?"), exc)
