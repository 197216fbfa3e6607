"""The daemon: source -> runtime -> postprocess -> sinks, pipelined so inference never waits.

Three threads, each handing over through a slot or a queue of one or two items:

1. capture (:class:`~edgecnn.sources.threaded.ThreadedSource`): grabs a frame and turns it
   into the input tensor right there (its ``prepare`` hook), keeps the newest;
2. main: ``invoke()`` and copying the outputs out, nothing else (the interpreter releases
   the GIL, so 1 and 3 run meanwhile);
3. finish: decode, thresholds and NMS (and tracking, :mod:`edgecnn.daemon.tracking`), then
   hands the :class:`FrameResult` to the sinks, which queue it for their own threads.
   After the last frame, it ends the objects still followed and hands their ``end`` events
   to the sinks in one more, :attr:`~FrameResult.final`, result.

Every thread and every hand-over costs CPU beside ``invoke()``; on a board whose cores are
all busy, that is what the loop loses against the interpreter alone, hence only three.

Start-up (:mod:`edgecnn.daemon.startup`): the model's spec is read in pure Python and the
thresholds resolved against its labels (a bad config fails here, in milliseconds); the
model is loaded and run once in a child process
(:func:`~edgecnn.runtime.validate.start_model_check`) while this module is imported, the
camera opens and the sinks are built; then it is loaded here and run once on zeros, and
only then ``READY=1`` goes to systemd.
The main loop sends ``WATCHDOG=1`` while it and the other stages are alive, also while the
camera is offline (``STATUS=`` says so); a stalled stage stops the pings.
:meth:`Daemon.stop` (SIGTERM) finishes the frames in flight (and ends the tracked objects),
flushes the sinks and releases the camera; so does the end of the source or ``max_frames``.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgecnn.config.device import DeviceConfig
from edgecnn.daemon.frames import FrameProcessor, iso_time
from edgecnn.daemon.notify import Notifier
from edgecnn.daemon.startup import Preflight, sink_context, start_up
from edgecnn.daemon.state import DaemonStats
from edgecnn.daemon.tracking import TrackEvents
from edgecnn.errors import EdgecnnError
from edgecnn.postprocess.letterbox import Letterbox
from edgecnn.runtime.backend import load_backend
from edgecnn.runtime.interpreter import TFLiteModel
from edgecnn.runtime.validate import ModelCheck, ModelInfo
from edgecnn.sinks import build_sink
from edgecnn.sinks.base import FrameResult, Sink
from edgecnn.sources import build_source
from edgecnn.sources.base import EndOfStream, Frame, Source
from edgecnn.sources.threaded import ThreadedSource

log = logging.getLogger(__name__)

_END = object()  # end of the frame stream, passed down the stages


@dataclass
class _Job:
    """One frame on its way through the stages (``tensor`` None: not prepared yet)."""

    frame: Frame
    tensor: np.ndarray | None = None
    box_map: Letterbox | None = None
    pre_ms: float = 0.0
    number: int = 0
    infer_ms: float = 0.0
    outputs: list[np.ndarray] = field(default_factory=list)


class Daemon:
    """The detection daemon for one device config.

    Args:
        config: the validated device config.
        max_frames: stop after this many processed frames (None: run until stopped or the
            source ends).
        source_factory: creates the source (default: the config's ``source`` plugin); tests
            pass a fake camera here.
        notifier: where ``sd_notify`` messages go (default: ``$NOTIFY_SOCKET``).
        stats: the live state object (default: a new one).
        tick: seconds the stages wait for work before checking for a stop (and the main loop
            for a watchdog ping).
        preflight: the spec, thresholds and model check already started
            (:func:`~edgecnn.daemon.startup.run_daemon` does that before importing this
            module); default: done in :meth:`run`.

    Example:
        >>> daemon = Daemon(load_device_config("device.yaml"))
        >>> daemon.run()    # until daemon.stop() or SIGTERM (through run_daemon)
        0
    """

    def __init__(
        self,
        config: DeviceConfig,
        *,
        max_frames: int | None = None,
        source_factory: Callable[[], Source] | None = None,
        notifier: Notifier | None = None,
        stats: DaemonStats | None = None,
        tick: float = 0.2,
        preflight: Preflight | None = None,
    ) -> None:
        self.config = config
        self.max_frames = max_frames
        self.notifier = notifier or Notifier.from_env()
        # A watched folder may get no image for hours: no frame then is not a fault.
        idle_ok = getattr(config.source, "watch", False)
        stale_after = math.inf if idle_ok else config.source.stall_timeout
        self.stats = stats or DaemonStats(config.device, stale_after=stale_after)
        self.tick = tick
        self._preflight = preflight
        self._check: ModelCheck | None = None
        self._source_factory = source_factory or (lambda: build_source(config.source))
        self._stop = threading.Event()
        self._stop_reason = ""
        self._beats: dict[str, float] = {}
        self._status_dirty = False
        self._stalled: list[str] = []
        self.source: ThreadedSource | None = None
        self.sinks: list[tuple[str, Sink]] = []
        self._started: list[tuple[str, Sink]] = []  # sinks whose start() returned
        self.model: TFLiteModel | None = None
        self.processor: FrameProcessor | None = None
        self.tracking: TrackEvents | None = None
        self.model_info: ModelInfo | None = None
        self._q_out: queue.Queue[object] = queue.Queue(maxsize=2)
        self._threads: list[threading.Thread] = []
        self.end_reason = ""
        self._failure: EdgecnnError | None = None

    # -- control ---------------------------------------------------------------------------

    def stop(self, reason: str = "stop requested", *, failed: bool = False) -> None:
        """Ask the daemon to stop (thread- and signal-safe); :meth:`run` then returns 0, or
        with ``failed`` raises :class:`EdgecnnError` naming ``reason`` (exit code 1)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            if failed:
                self._failure = EdgecnnError(reason)
            self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def run(self) -> int:
        """Start up, process frames until stopped, the source ends or ``max_frames``; returns 0.

        Raises:
            ConfigError: a bad config (unknown label, missing file, ...).
            ModelError: the model is unusable.
        """
        try:
            self._start()
            if not self.stopping:
                self._loop()
        finally:
            self._shutdown()
        reason = self._stop_reason or self.end_reason or "done"
        log.info("stopped (%s) after %d frames", reason, self.stats.frames)
        if self._failure is not None:
            raise self._failure
        return 0

    # -- start-up --------------------------------------------------------------------------

    def _start(self) -> None:
        cfg = self.config
        started = time.perf_counter()
        self.notifier.status("starting: checking the model")
        early = self._preflight or start_up(cfg)
        self._check = early.check
        spec, settings = early.spec, early.settings
        self.stats.set_names(model=spec.name)
        first = [self._source_factory()]  # a missing file or bad device name fails here, as config
        first[0].check()  # and a file that is no video: once, before anything is started
        context = sink_context(cfg, spec, self.stats)
        self.sinks = _name_sinks([build_sink(sink_config, context) for sink_config in cfg.sinks], cfg.sinks)
        source_config = cfg.source
        realtime = source_config.realtime if source_config.realtime is not None else first[0].live
        self.source = ThreadedSource(
            lambda: first.pop() if first else self._source_factory(),
            name=source_config.name or first[0].name,
            stall_timeout=source_config.stall_timeout,
            reconnect_initial=source_config.reconnect_initial,
            reconnect_max=source_config.reconnect_max,
            realtime=realtime,
            on_status=self._on_source_status,
            prepare=self._prepare,
        )
        self.stats.set_names(source=self.source.name)
        self.stats.set_counters(self.source.counters)
        self.source.start()
        load_backend(None)  # import the interpreter package while the child checks the model
        # ModelError if the interpreter cannot load or run it; the watchdog is fed meanwhile
        self.model_info = early.check.result(self.tick, self._startup_tick)
        if self.stopping:
            return
        for name, sink in self.sinks:
            try:
                sink.start()
            except OSError as exc:  # check_outputs ruled out the config's faults: the disk's, now
                where = f" {exc.filename}" if exc.filename else ""
                raise EdgecnnError(f"sink {name}: cannot start:{where}: {exc.strerror or exc}") from None
            self._started.append((name, sink))
        self.stats.set_sinks(self.sinks)
        self._on_source_status(self.source.state, self.source.detail)
        self.model = TFLiteModel(cfg.model.path, num_threads=cfg.model.num_threads, spec=spec)
        self.processor = FrameProcessor(self.model, settings)
        if settings.track is not None:
            self.tracking = TrackEvents(settings.track, spec.labels, iso_time)
        self.model.invoke_raw(np.zeros(self.model.input_shape, self.model.input_dtype))  # first inference
        self.stats.set_ready()
        log.info(
            "ready in %.2f s: model %s (%s, %d labels, %s), source %s, sinks %s",
            time.perf_counter() - started,
            spec.name,
            spec.task,
            spec.num_classes,
            self.model.backend,
            self.source.name,
            ", ".join(name for name, _ in self.sinks) or "none",
        )
        self.notifier.ready(self._status_text())

    # -- the stages ------------------------------------------------------------------------

    def _loop(self) -> None:
        assert self.model is not None and self.source is not None
        self._beats = {"finish": time.monotonic()}
        self._threads = [threading.Thread(target=self._finish_stage, name="finish", daemon=True)]
        for thread in self._threads:
            thread.start()
        model, source = self.model, self.source
        number = 0
        try:
            while not self.stopping:
                self._heartbeat()
                try:
                    job = source.read(timeout=self.tick)
                    if job is not None and job.tensor is None:  # captured before the model loaded
                        job = self._prepare(job.frame, job)
                except EndOfStream:
                    self.end_reason = "the source ended"
                    break
                except Exception as exc:  # from _prepare: a bug, every frame would fail
                    self._failure = EdgecnnError(f"preparing frame {number + 1} failed: {exc}")
                    self.stop("preprocessing failed")
                    break
                if job is None:
                    continue
                number += 1
                job.number = number
                t0 = time.perf_counter()
                model.invoke_raw(job.tensor)
                job.outputs = model.outputs_raw()
                job.infer_ms = (time.perf_counter() - t0) * 1000
                if not self._put(self._q_out, job):
                    break
                if self.max_frames is not None and number >= self.max_frames:
                    self.end_reason = f"{number} frames (--max-frames)"
                    break
        finally:
            self._stop_pipeline()

    def _prepare(self, frame: Frame, job: _Job | None = None) -> _Job | None:
        """The frame's input tensor, on the capture thread (:class:`ThreadedSource` calls this);
        None for a frame the preprocessing cannot take. Frames captured before the model is
        loaded are left for the main loop to prepare."""
        job = job or _Job(frame)
        processor = self.processor
        if processor is None:
            return job
        t0 = time.perf_counter()
        try:
            job.tensor, job.box_map = processor.prepare(frame.image)
        except ValueError as exc:  # a frame the preprocessing cannot take: skip it
            log.warning("skipping a frame: %s", exc)
            return None
        job.pre_ms = (time.perf_counter() - t0) * 1000
        return job

    def _finish_stage(self) -> None:
        assert self.processor is not None and self.source is not None
        model_name = self.processor.spec.name
        source_name = self.source.name
        failing: set[str] = set()
        last = 0  # the last frame's number
        while True:
            self._beats["finish"] = time.monotonic()
            try:
                job = self._q_out.get(timeout=self.tick)
            except queue.Empty:
                continue
            if job is _END:
                ended = self.tracking.end_all() if self.tracking is not None else ()
                if ended:  # the objects still followed end with the stream, in one more result
                    final = FrameResult(
                        ts=iso_time(time.time()),
                        frame=last,
                        source=source_name,
                        model=model_name,
                        latency_ms={},
                        detections=(),
                        events=ended,
                        final=True,
                    )
                    self._emit(final, failing)
                return
            assert isinstance(job, _Job)
            last = job.number
            t0 = time.perf_counter()
            full = job.frame.full
            size = None if full is None else (full.shape[1], full.shape[0])
            assert job.box_map is not None
            events: tuple[dict[str, object], ...] = ()
            try:
                detections = self.processor.detections(job.outputs, job.box_map, size)
                if self.tracking is not None:
                    detections, events = self.tracking.update(detections, job.frame)
            except Exception as exc:  # a bug or outputs that do not fit: every frame would fail
                self._failure = EdgecnnError(f"post-processing frame {job.number} failed: {exc}")
                self.stop("post-processing failed")
                return
            result = FrameResult(
                ts=iso_time(job.frame.ts),
                frame=job.number,
                source=source_name,
                model=model_name,
                latency_ms={
                    "pre": job.pre_ms,
                    "infer": job.infer_ms,
                    "post": (time.perf_counter() - t0) * 1000,
                },
                detections=detections,
                image=full if full is not None else job.frame.image,
                file=job.frame.path,
                events=events,
            )
            self.stats.record(result)
            self._emit(result, failing)

    def _emit(self, result: FrameResult, failing: set[str]) -> None:
        """Hand ``result`` to every sink; a failing sink is logged once (``failing``)."""
        for name, sink in self.sinks:
            try:
                sink.emit(result)
            except Exception as exc:  # one broken sink must not stop the others
                if name not in failing:
                    log.error("sink %s failed: %s", name, exc)
                failing.add(name)

    def _put(self, q: queue.Queue[object], item: object) -> bool:
        """Put ``item`` on ``q``, waiting as long as needed unless the daemon stops (False)."""
        while not self.stopping:
            try:
                q.put(item, timeout=self.tick)
                return True
            except queue.Full:
                continue
        return False

    def _stop_pipeline(self) -> None:
        """Let the finish stage drain what was inferred, and join it."""
        self._stop.set()
        deadline = time.monotonic() + self.config.stop_timeout / 2
        (finish,) = self._threads
        try:
            if finish.is_alive():
                self._q_out.put(_END, timeout=max(0.01, deadline - time.monotonic()))
        except queue.Full:
            log.warning("the finish stage is stuck; results in flight are lost")
        finish.join(max(0.0, deadline - time.monotonic()))

    # -- health ----------------------------------------------------------------------------

    def _on_source_status(self, state: str, detail: str) -> None:
        self.stats.set_source_state(state, detail)
        self._status_dirty = True
        for name, sink in list(self._started):
            try:
                sink.status(state, detail)
            except Exception as exc:
                log.error("sink %s: status failed: %s", name, exc)

    def _startup_tick(self) -> bool:
        """Feed the watchdog while the model is checked; True (give up waiting) once stopping."""
        if self.notifier.watchdog_due():
            self.notifier.watchdog("starting: checking the model")
        return self.stopping

    def _status_text(self) -> str:
        state = self.stats.source_state
        if state == "offline":
            detail = self.source.detail if self.source is not None else ""
            return f"camera offline: {detail}; retrying" if detail else "camera offline; retrying"
        if state in ("starting", "ended"):
            return f"running: source {state}"
        return f"running: {self.stats.fps():.1f} fps, {self.stats.frames} frames"

    def _heartbeat(self) -> None:
        """Ping the watchdog when due and every stage is alive; send STATUS on changes."""
        now = time.monotonic()
        due = self.notifier.watchdog_due(now)
        if not (due or self._status_dirty):
            return
        limit = max(2.0, self.notifier.watchdog_interval or 0.0)
        stalled = [name for name, beat in self._beats.items() if now - beat > limit]
        if stalled:
            if stalled != self._stalled:
                log.error("the %s stage is stalled: no watchdog pings until it recovers", ", ".join(stalled))
                self.notifier.status(f"stalled: {', '.join(stalled)} stage")
            self._stalled = stalled
            return
        self._stalled = []
        self._status_dirty = False
        if due:
            self.notifier.watchdog(self._status_text())
        else:
            self.notifier.status(self._status_text())

    # -- shutdown --------------------------------------------------------------------------

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.config.stop_timeout
        self.stats.set_status("stopping")
        self.notifier.stopping(f"stopping: {self._stop_reason or self.end_reason or 'done'}")
        self._stop.set()
        if self._check is not None:
            self._check.cancel()  # a child still checking the model: nobody waits for it now
        if self.source is not None:
            self.source.stop(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        _stop_all([sink for _, sink in self._started], deadline)
        self.notifier.close()


def _name_sinks(built: list[Sink], configs: list[object]) -> list[tuple[str, Sink]]:
    """``(name, sink)`` pairs: the type, numbered when a type appears more than once."""
    names = [str(getattr(c, "type", "sink")) for c in configs]
    out = []
    for i, (name, sink) in enumerate(zip(names, built, strict=True)):
        out.append((f"{name}{names[:i].count(name) + 1}" if names.count(name) > 1 else name, sink))
    return out


def _stop_all(sinks: list[Sink], deadline: float) -> None:
    """Stop the sinks in parallel, each within what is left of ``deadline``."""
    remaining = max(0.1, deadline - time.monotonic())
    threads = [
        threading.Thread(target=_stop_one, args=(sink, remaining * 0.9), name="sink-stop", daemon=True)
        for sink in sinks
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _stop_one(sink: Sink, timeout: float) -> None:
    try:
        sink.stop(timeout=timeout)
    except Exception as exc:
        log.error("stopping sink %s failed: %s", type(sink).__name__, exc)
