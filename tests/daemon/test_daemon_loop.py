"""The daemon in this process, with a real model and real sinks: recovery from a failing
camera, and sd_notify on a real NOTIFY_SOCKET (READY after the first inference, WATCHDOG
timing, pings while the camera is offline, no pings while the loop is stalled).

The camera is :class:`FakeCamera` (conftest): the Pi camera cannot exist here.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgecnn.config.device import DeviceConfig
from edgecnn.daemon.loop import Daemon
from edgecnn.daemon.notify import Notifier
from edgecnn.runtime.interpreter import TFLiteModel


def _config(model: Path, out: Path, **source: Any) -> DeviceConfig:
    options = {"stall_timeout": 2.0, "reconnect_initial": 0.05, "reconnect_max": 0.2, **source}
    return DeviceConfig.model_validate(
        {
            "device": "test-cam",
            "model": {"path": str(model), "num_threads": 1},
            "source": {"type": "opencv", "input": 0, **options},
            "sinks": [{"type": "jsonl", "path": str(out)}],
        }
    )


class _Running:
    """A daemon on a thread; :meth:`finish` stops it and returns its exit code."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.code: list[int] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.code.append(self.daemon.run())
        except BaseException as exc:
            self.errors.append(exc)

    def finish(self) -> int:
        self.daemon.stop("test done")
        self.thread.join(20)
        assert not self.thread.is_alive(), "the daemon did not stop"
        assert not self.errors, self.errors
        return self.code[0]


@pytest.fixture
def running() -> Iterator[Callable[[Daemon], _Running]]:
    started: list[_Running] = []

    def start(daemon: Daemon) -> _Running:
        started.append(_Running(daemon))
        return started[-1]

    yield start
    for run in started:
        run.daemon.stop("teardown")
        run.thread.join(20)


def test_a_failing_camera_recovers_in_the_same_process(
    tiny_models: dict[str, Path],
    fake_camera: dict[str, Any],
    tmp_path: Path,
    running: Callable[[Daemon], _Running],
    until: Callable[..., bool],
) -> None:
    fake_camera["script"] = ["ok"] * 5 + ["error", "empty", "shape"]
    fake_camera["open_fails"] = 3
    fake_camera["delay"] = 0.01
    out = tmp_path / "d.jsonl"
    daemon = Daemon(
        _config(tiny_models["det"], out), source_factory=fake_camera["factory"], notifier=Notifier()
    )
    run = running(daemon)
    assert until(lambda: daemon.stats.frames >= 5)
    assert until(lambda: daemon.source is not None and daemon.source.counters()["reconnects"] >= 1)
    seen = daemon.stats.frames
    assert until(lambda: daemon.stats.frames >= seen + 10)  # frames flow again after the outage
    snapshot = daemon.stats.snapshot()
    assert snapshot["source_state"] == "online" and snapshot["ready"] and snapshot["healthy"]
    assert snapshot["failures"] >= 6 and snapshot["reconnects"] >= 1 and snapshot["fps"] > 0
    assert set(snapshot["latency_ms"]) == {"pre", "infer", "post"}
    assert snapshot["sinks"] == {"jsonl": {"dropped": 0}}
    assert run.finish() == 0
    frames = [json.loads(line)["frame"] for line in out.read_text().splitlines()]
    assert frames == list(range(1, len(frames) + 1)) and len(frames) >= 15
    assert fake_camera["closes"] == fake_camera["opens"] - 3  # the 3 failed opens held nothing


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Records, in order, every invoke and every sd_notify datagram sent; ``block`` stalls invoke."""
    trace: dict[str, Any] = {"events": [], "block": threading.Event(), "release": threading.Event()}
    trace["blocked_at"] = []
    invoke, send = TFLiteModel.invoke_raw, Notifier.send

    def traced_invoke(self: TFLiteModel, x: Any = None) -> None:
        if trace["block"].is_set():
            trace["blocked_at"].append(time.monotonic())
            trace["release"].wait()
        trace["events"].append(("invoke",))
        invoke(self, x)

    def traced_send(self: Notifier, *assignments: str) -> bool:
        trace["events"].append(("send", *assignments))
        return send(self, *assignments)

    monkeypatch.setattr(TFLiteModel, "invoke_raw", traced_invoke)
    monkeypatch.setattr(Notifier, "send", traced_send)
    return trace


@pytest.mark.slow
def test_ready_after_the_first_inference_and_watchdog_at_half_the_timeout(
    tiny_models: dict[str, Path],
    fake_camera: dict[str, Any],
    tmp_path: Path,
    notify_socket: Any,
    traced: dict[str, Any],
    running: Callable[[Daemon], _Running],
    until: Callable[..., bool],
) -> None:
    fake_camera["delay"] = 0.02
    daemon = Daemon(
        _config(tiny_models["det"], tmp_path / "d.jsonl"),
        source_factory=fake_camera["factory"],
        notifier=Notifier(notify_socket.address, watchdog_usec=2_000_000),
        tick=0.1,
    )
    run = running(daemon)
    assert until(lambda: len(notify_socket.times("WATCHDOG")) >= 5)
    events = traced["events"]
    ready_at = next(i for i, e in enumerate(events) if "READY=1" in e)
    assert any(e == ("invoke",) for e in events[:ready_at])  # READY only after an inference ran
    assert run.finish() == 0
    ready = notify_socket.times("READY")
    assert len(ready) == 1
    pings = [t for t in notify_socket.times("WATCHDOG") if t > ready[0]]  # (start-up pings came before)
    gaps = [b - a for a, b in zip([ready[0], *pings], pings, strict=False)]
    assert min(gaps) >= 1.0 * 0.95  # never more often than every half timeout (1 s) ...
    assert max(gaps) < 2.0  # ... and never late enough for systemd's 2 s watchdog to fire
    assert statistics.median(gaps) < 1.5
    assert notify_socket.statuses()[-2].startswith("running: ")  # sent with the pings
    assert "STOPPING" in notify_socket.messages[-1][1]


@pytest.mark.slow
def test_watchdog_continues_while_the_camera_is_offline(
    tiny_models: dict[str, Path],
    fake_camera: dict[str, Any],
    tmp_path: Path,
    notify_socket: Any,
    running: Callable[[Daemon], _Running],
    until: Callable[..., bool],
) -> None:
    fake_camera["script"] = ["ok"] * 3 + ["error"]
    fake_camera["open_fails"] = 10**6  # unplugged for good
    daemon = Daemon(
        _config(tiny_models["det"], tmp_path / "d.jsonl"),
        source_factory=fake_camera["factory"],
        notifier=Notifier(notify_socket.address, watchdog_usec=1_000_000),
    )
    run = running(daemon)
    assert until(lambda: daemon.stats.source_state == "offline" and notify_socket.times("READY"))
    since = time.monotonic()  # offline and ready (start-up pings do not count)
    assert until(lambda: len([t for t in notify_socket.times("WATCHDOG") if t > since]) >= 4)
    assert daemon.stats.source_state == "offline"
    statuses = notify_socket.statuses()
    assert any(s.startswith("camera offline: cannot open: no such camera; retrying") for s in statuses), (
        statuses
    )
    assert not daemon.stats.healthy()
    assert run.finish() == 0


@pytest.mark.slow
def test_watchdog_stops_while_the_loop_is_stalled(
    tiny_models: dict[str, Path],
    fake_camera: dict[str, Any],
    tmp_path: Path,
    notify_socket: Any,
    traced: dict[str, Any],
    running: Callable[[Daemon], _Running],
    until: Callable[..., bool],
) -> None:
    """A stall is injected by making invoke() block, as a wedged interpreter would."""
    fake_camera["delay"] = 0.02
    daemon = Daemon(
        _config(tiny_models["det"], tmp_path / "d.jsonl"),
        source_factory=fake_camera["factory"],
        notifier=Notifier(notify_socket.address, watchdog_usec=1_000_000),
    )
    run = running(daemon)
    assert until(lambda: notify_socket.times("READY"))
    ready = notify_socket.times("READY")[0]
    assert until(lambda: len([t for t in notify_socket.times("WATCHDOG") if t > ready]) >= 2)  # looping
    traced["block"].set()
    assert until(lambda: traced["blocked_at"])
    stalled_at = traced["blocked_at"][0]
    time.sleep(2.5)  # five ping intervals
    assert [t for t in notify_socket.times("WATCHDOG") if t > stalled_at + 0.1] == []
    traced["block"].clear()
    traced["release"].set()
    resumed = time.monotonic()
    assert until(lambda: [t for t in notify_socket.times("WATCHDOG") if t > resumed])
    assert run.finish() == 0


def test_a_post_processing_failure_stops_the_daemon_with_one_error(
    tiny_models: dict[str, Path], fake_camera: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecnn.daemon.frames import FrameProcessor
    from edgecnn.errors import EdgecnnError

    calls: list[int] = []

    def broken(self: FrameProcessor, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise IndexError("output 3 does not exist")

    monkeypatch.setattr(FrameProcessor, "detections", broken)
    daemon = Daemon(
        _config(tiny_models["det"], tmp_path / "d.jsonl"),
        source_factory=fake_camera["factory"],
        notifier=Notifier(),
    )
    started = time.monotonic()
    with pytest.raises(EdgecnnError, match="post-processing frame 1 failed: output 3 does not exist"):
        daemon.run()
    assert len(calls) == 1 and time.monotonic() - started < 30
    assert fake_camera["closes"] == fake_camera["opens"]  # the camera was released on the way out


def test_a_preprocessing_failure_stops_the_daemon_with_one_error(
    tiny_models: dict[str, Path], fake_camera: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecnn.daemon.frames import FrameProcessor
    from edgecnn.errors import EdgecnnError

    def broken(self: FrameProcessor, image: Any) -> Any:
        raise IndexError("no such channel")

    monkeypatch.setattr(FrameProcessor, "prepare", broken)
    daemon = Daemon(
        _config(tiny_models["det"], tmp_path / "d.jsonl"),
        source_factory=fake_camera["factory"],
        notifier=Notifier(),
    )
    with pytest.raises(EdgecnnError, match="preparing frame 1 failed: no such channel"):
        daemon.run()
    assert daemon.stats.frames == 0
    assert fake_camera["closes"] == fake_camera["opens"]


def test_a_sink_that_cannot_start_is_one_error_not_a_traceback(
    tiny_models: dict[str, Path], fake_camera: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What check_outputs cannot see coming (a full disk, a folder made read-only meanwhile)."""
    import errno

    from edgecnn.errors import EdgecnnError, UserError
    from edgecnn.sinks.jsonl import JsonlSink

    out = tmp_path / "d.jsonl"

    def full(self: JsonlSink) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(JsonlSink, "start", full)
    daemon = Daemon(
        _config(tiny_models["det"], out), source_factory=fake_camera["factory"], notifier=Notifier()
    )
    with pytest.raises(EdgecnnError, match=rf"^sink jsonl: cannot start: {out}: No space left") as info:
        daemon.run()
    assert not isinstance(info.value, UserError)  # exit 1: a runtime failure, systemd retries
    assert fake_camera["closes"] == fake_camera["opens"]
