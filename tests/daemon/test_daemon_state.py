"""DaemonStats (what health endpoints read) and the sd_notify client's environment rules."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from edgecnn.daemon.notify import Notifier
from edgecnn.daemon.state import DaemonStats
from edgecnn.sinks.base import Detection, FrameResult


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _result(n: int, infer: float = 10.0) -> FrameResult:
    return FrameResult(
        "2026-11-30T12:00:00.000Z", n, "cam", "m", {"pre": 1.0, "infer": infer, "post": 0.5},
        (Detection("person", 0, 0.9, (0, 0, 1, 1)),),
    )  # fmt: skip


def test_stats_count_rate_age_latency_and_health() -> None:
    clock = Clock()
    stats = DaemonStats("cam1", fps_window=5.0, stale_after=2.0, clock=clock)
    assert stats.snapshot()["fps"] == 0.0 and not stats.healthy()
    stats.set_names(model="det", source="/dev/video0")
    stats.set_counters(lambda: {"dropped": 7, "reconnects": 1, "stalls": 0, "failures": 2, "hung": 0})
    stats.set_ready()
    stats.set_source_state("online")
    for i in range(1, 21):  # 20 frames over 2 s: 10 fps
        clock.now += 0.1
        stats.record(_result(i, infer=10.0 if i < 20 else 20.0))
    snap = stats.snapshot()
    assert snap["frames"] == 20 and snap["fps"] == pytest.approx(10.0)
    assert snap["latency_ms"]["infer"] == pytest.approx(11.0)  # moving average: 10 + 0.1 * (20 - 10)
    assert snap["dropped"] == 7 and snap["failures"] == 2 and "hung" not in snap
    assert snap["healthy"] and snap["detections"] == 1 and snap["source"] == "/dev/video0"
    clock.now += 3.0  # no frame for longer than stale_after
    assert stats.last_frame_age() == pytest.approx(3.0) and not stats.healthy()
    stats.set_source_state("offline", "unplugged")
    snap = stats.snapshot()
    assert (snap["source_state"], snap["source_detail"], snap["source_state_age_s"]) == (
        "offline",
        "unplugged",
        0,
    )


def test_wait_for_result_wakes_on_a_new_frame_and_on_stopping() -> None:
    stats = DaemonStats("cam1")
    stats.record(_result(1))
    assert stats.wait_for_result(after=0, timeout=0.01).frame == 1  # type: ignore[union-attr]
    assert stats.wait_for_result(after=1, timeout=0.01) is None
    threading.Timer(0.05, lambda: stats.record(_result(2))).start()
    assert stats.wait_for_result(after=1, timeout=10).frame == 2  # type: ignore[union-attr]
    threading.Timer(0.05, lambda: stats.set_status("stopping")).start()
    assert stats.wait_for_result(after=2, timeout=10) is None


def test_notifier_reads_the_environment_as_sd_watchdog_enabled_does(tmp_path: Path) -> None:
    assert not Notifier.from_env({}).enabled
    assert Notifier.from_env({}).send("READY=1") is False
    n = Notifier.from_env({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"})
    assert n.enabled and n.watchdog_interval == 15.0
    other = Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None  # the watchdog is for another process
    mine = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(mine).watchdog_interval == 2.0


def test_notifier_sends_to_a_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        notifier = Notifier(str(path), watchdog_usec=1_000_000)
        assert notifier.ready("up\nand running")  # a newline would start a new assignment
        assert server.recv(100) == b"READY=1\nSTATUS=up and running"
        assert not notifier.watchdog_due()  # READY starts the first interval
        assert notifier.watchdog()
        assert server.recv(100) == b"WATCHDOG=1"
        notifier.close()
    assert not Notifier(str(tmp_path / "gone")).send("READY=1")  # no listener: False, no exception
