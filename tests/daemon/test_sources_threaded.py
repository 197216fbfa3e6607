"""ThreadedSource against a scripted fake camera: failures, recovery, hung reads, leaks, drops.

The Pi camera cannot exist here, and a read that hangs (a wedged driver, a dead USB
camera) can only be simulated: :class:`FakeCamera` (conftest) blocks such a read on an
event, exactly as a real blocking call would hold its thread.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

import pytest

from edgecnn.sources.base import EndOfStream, Frame, Source
from edgecnn.sources.threaded import ThreadedSource


def _source(fake: dict[str, Any], **kwargs: Any) -> tuple[ThreadedSource, list[tuple[float, str, str]]]:
    events: list[tuple[float, str, str]] = []
    options = {"stall_timeout": 5.0, "reconnect_initial": 0.01, "reconnect_max": 0.05, **kwargs}
    src = ThreadedSource(
        fake["factory"],
        name="fake",
        on_status=lambda s, d: events.append((time.monotonic(), s, d)),
        **options,
    )
    return src, events


def _read_n(src: ThreadedSource, n: int, timeout: float = 20.0) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        frame = src.read(timeout=0.1)
        if frame is not None:
            frames.append(frame)
    assert len(frames) == n, f"got {len(frames)} of {n} frames"
    return frames


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_failures_then_recovery_in_the_same_source(fake_camera: dict[str, Any]) -> None:
    fake_camera["script"] = ["ok", "ok", "error", "empty", "shape", "float", "ok"]
    fake_camera["open_fails"] = 0
    src, events = _source(fake_camera)
    with src:
        frames = _read_n(src, 6)
        states = [s for _, s, _ in events]
        assert states[0] == "online"
        assert "offline" in states and states[-1] == "online"
        details = " | ".join(d for _, s, d in events if s == "offline")
        for problem in ("camera unplugged", "empty frame", "(48, 64, 2)", "float32"):
            assert problem in details
        counters = src.counters()
        assert counters["failures"] == 4
        assert counters["reconnects"] == 1  # four failures in a row, then back online once
        assert fake_camera["opens"] == 5
        assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert fake_camera["closes"] == fake_camera["opens"]  # every camera object was released
    assert src.state == "stopped"


def test_open_failures_back_off_doubling_up_to_the_cap(fake_camera: dict[str, Any]) -> None:
    fake_camera["open_fails"] = 6
    opened: list[float] = []
    factory = fake_camera["factory"]

    def timed_factory() -> Source:
        opened.append(time.monotonic())
        return factory()

    fake_camera["factory"] = timed_factory
    src, events = _source(fake_camera, reconnect_initial=0.05, reconnect_max=0.2)
    with src:
        _read_n(src, 1)
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    assert len(gaps) == 6
    expected = [0.05, 0.1, 0.2, 0.2, 0.2, 0.2]
    for gap, want in zip(gaps, expected, strict=True):
        assert gap >= want * 0.9  # sleeps never end early; an upper bound would only measure the machine
    assert "cannot open: no such camera" in next(d for _, s, d in events if s == "offline")
    assert src.counters()["reconnects"] == 1


def test_hung_read_is_detected_within_the_stall_timeout_and_replaced(fake_camera: dict[str, Any]) -> None:
    """A read that never returns: the source goes offline within stall_timeout (plus the
    supervisor's tick and a generous margin for a loaded machine) and a fresh camera takes over."""
    fake_camera["script"] = ["ok", "hang"]
    hang_started: list[float] = []
    fake_camera_read = fake_camera["factory"]

    def factory() -> Source:
        camera = fake_camera_read()
        original = camera.read

        def read() -> Frame:
            if fake_camera["script"][:1] == ["hang"]:
                hang_started.append(time.monotonic())
            return original()

        camera.read = read  # type: ignore[method-assign]
        return camera

    fake_camera["factory"] = factory
    stall = 0.5
    src, events = _source(fake_camera, stall_timeout=stall)
    with src:
        _read_n(src, 1)
        assert src.read(timeout=stall + 5.0) is not None  # frames again, from the replacement camera
        offline = [(t, d) for t, s, d in events if s == "offline"]
        assert offline and "read blocked for more than 0.5 s" in offline[0][1]
        detected_after = offline[0][0] - hang_started[0]
        assert stall <= detected_after < stall + 2.0
        counters = src.counters()
        assert counters["stalls"] == 1 and counters["hung"] == 1
        assert fake_camera["opens"] == 2
        fake_camera["release"].set()  # the wedged call returns at last: its worker cleans up and exits
        assert _wait(lambda: src.counters()["hung"] == 0)
    assert _wait(lambda: fake_camera["closes"] == fake_camera["opens"])


def test_threads_and_fds_do_not_pile_up_over_50_failures(fake_camera: dict[str, Any]) -> None:
    kinds = ["error", "empty", "shape", "float", "ok"]
    fake_camera["script"] = [kinds[i % len(kinds)] for i in range(62)]  # 50 bad reads among good ones
    fake_camera["open_fails"] = 0
    threads_before, fds_before = threading.active_count(), _fds()
    src, _ = _source(fake_camera, reconnect_initial=0.001, reconnect_max=0.001)
    with src:
        peak_threads = peak_fds = 0
        while fake_camera["script"]:
            src.read(timeout=0.05)
            peak_threads = max(peak_threads, threading.active_count())
            peak_fds = max(peak_fds, _fds())
        assert src.counters()["failures"] >= 49
    assert peak_threads <= threads_before + 3  # supervisor, worker (and a moment of overlap)
    assert peak_fds <= fds_before + 2  # one open camera
    assert _wait(lambda: threading.active_count() <= threads_before)
    assert _fds() <= fds_before
    assert fake_camera["closes"] == fake_camera["opens"] >= 50


def test_repeated_hangs_keep_at_most_max_hung_threads(fake_camera: dict[str, Any]) -> None:
    """Every camera hangs: stalls go on, but lingering threads stay bounded by max_hung."""
    fake_camera["script"] = ["hang"] * 50
    threads_before = threading.active_count()
    src, events = _source(fake_camera, stall_timeout=0.1, max_hung=2)
    with src:
        assert _wait(lambda: src.counters()["stalls"] >= 2)
        time.sleep(1.0)  # time for many more stalls if nothing held them back
        counters = src.counters()
        assert counters["hung"] <= 2
        assert threading.active_count() <= threads_before + 4  # supervisor + current worker + 2 hung
        assert "waiting for 2 hung reads" in events[-1][2]
        fake_camera["release"].set()
    assert _wait(lambda: threading.active_count() <= threads_before)


def test_realtime_keeps_only_the_newest_frame(fake_camera: dict[str, Any]) -> None:
    fake_camera["delay"] = 0.005
    src, _ = _source(fake_camera, realtime=True)
    with src:
        last = -1
        for _ in range(5):
            time.sleep(0.1)  # a slow consumer: the camera runs ahead
            frame = src.read(timeout=5.0)
            assert frame is not None and frame.index > last
            last = frame.index
        assert src.counters()["dropped"] > 5


def test_not_realtime_hands_over_every_frame_in_order(fake_camera: dict[str, Any]) -> None:
    fake_camera["delay"] = 0.0
    src, _ = _source(fake_camera, realtime=False)
    with src:
        frames = []
        for _ in range(20):
            if len(frames) % 5 == 0:
                time.sleep(0.05)
            frames.append(src.read(timeout=5.0))
        indexes = [f.index for f in frames if f is not None]
        assert indexes == list(range(indexes[0], indexes[0] + 20))
        assert src.counters()["dropped"] == 0


def test_prepare_runs_on_the_capture_thread_and_its_result_is_handed_over(
    fake_camera: dict[str, Any],
) -> None:
    """What the daemon uses to turn frames into input tensors while inference runs."""
    fake_camera["delay"] = 0.0

    def prepare(frame: Frame) -> tuple[int, str] | None:
        if frame.index % 3 == 0:
            return None  # skipped: never handed over
        return frame.index, threading.current_thread().name

    src, _ = _source(fake_camera, realtime=False, prepare=prepare)
    with src:
        got = _read_n(src, 10)
    indexes = [index for index, _ in got]  # type: ignore[misc]
    assert indexes == [i for i in range(indexes[0], indexes[-1] + 1) if i % 3]
    threads = {name for _, name in got}  # type: ignore[misc]
    assert len(threads) == 1 and threads != {threading.current_thread().name}
    assert next(iter(threads)).startswith("source-fake")


def test_an_error_in_prepare_is_raised_by_read(fake_camera: dict[str, Any]) -> None:
    def prepare(frame: Frame) -> Frame:
        if frame.index == 2:
            raise RuntimeError("prepare is broken")
        return frame

    src, _ = _source(fake_camera, realtime=False, prepare=prepare)
    with src:
        assert src.read(timeout=5.0) is not None
        with pytest.raises(RuntimeError, match="prepare is broken"):
            src.read(timeout=5.0)
        assert src.counters()["failures"] == 0  # not the camera's fault


def test_end_of_stream_after_the_last_frame() -> None:
    class ThreeFrames(Source):
        name = "three"
        live = False

        def __init__(self) -> None:
            self.n = 0

        def read(self) -> Frame:
            if self.n == 3:
                raise EndOfStream("three")
            self.n += 1
            return Frame(image=__import__("numpy").zeros((4, 4, 3), "uint8"), ts=0.0, index=self.n)

    src = ThreadedSource(ThreeFrames, realtime=False)
    with src:
        got = [src.read(timeout=5.0) for _ in range(3)]
        assert [f.index for f in got if f is not None] == [1, 2, 3]
        with pytest.raises(EndOfStream):
            src.read(timeout=5.0)
        assert src.state == "ended"


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
