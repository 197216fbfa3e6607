"""The JSON-lines sink when its file or its pipe goes away: logrotate, SIGHUP, a full disk,
``| head``.

In-process tests use real files; a full disk is either a real tmpfs (mounted here when
the tests run as root, skipped otherwise) or, for exact byte counts, :class:`Disk`: real
files whose writes stop at a budget of free bytes with ENOSPC, as write(2) does. What is
about the process (signals, exit codes, stdout) runs ``edgecnn run`` as a child process.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgecnn.daemon.signals import reopen_requests, request_stop, stop_on_signals
from edgecnn.sinks import jsonl as jsonl_module
from edgecnn.sinks.base import Detection, FrameResult
from edgecnn.sinks.jsonl import JsonlConfig, JsonlSink


def _result(n: int) -> FrameResult:
    return FrameResult(
        ts=f"2026-11-30T12:00:{n % 60:02d}.000Z",
        frame=n,
        source="cam",
        model="tiny_det",
        latency_ms={"pre": 1.0, "infer": 5.25, "post": 0.125},
        detections=(Detection("person", 0, 0.75, (1.0, 2.0, 30.5, 40.25)),),
    )


LINE = len(json.dumps(_result(10).to_record(), separators=(",", ":"))) + 1  # frames 10..99 all have this size


def _frames(path: Path) -> list[int]:
    """The frames of a JSON-lines file; fails on a torn line."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"{path.name} does not end with a complete line"
    return [json.loads(line)["frame"] for line in text.splitlines()]


def _emit(sink: JsonlSink, frames: range, until: Callable[..., bool]) -> None:
    """Emit one frame at a time, each written (or dropped) before the next: one line per batch."""
    for n in frames:
        done = sink.written + sink.dropped
        sink.emit(_result(n))
        assert until(lambda done=done: sink.written + sink.dropped > done)


def _count(path: Path) -> int:
    """Complete lines in a file being written (0 while it does not exist)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _sink_log(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == jsonl_module.__name__]


class Disk:
    """A file system with ``free`` bytes left, shared by the files opened on it: a write is
    cut at what is free, and one with nothing free raises ENOSPC. ``opens`` counts opens."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.opens = 0

    def open(self, path: Path) -> io.FileIO:
        self.opens += 1
        return _DiskFile(path, self)


class _DiskFile(io.FileIO):
    def __init__(self, path: Path, disk: Disk) -> None:
        super().__init__(path, "a")
        self.disk = disk

    def write(self, data: Any) -> int:
        if self.disk.free <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done = super().write(memoryview(data)[: self.disk.free])
        self.disk.free -= done
        return done


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    """The sink's files open on a :class:`Disk` with plenty of room (tests shrink ``free``)."""
    disk = Disk(free=10**9)
    monkeypatch.setattr(jsonl_module, "_open_append", disk.open)
    return disk


# -- logrotate: the file moved or removed under the running sink ---------------------------------


def test_a_removed_file_is_recreated_and_the_backups_are_kept(
    tmp_path: Path, until: Callable[..., bool], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "d.jsonl"
    backups = [path.with_name(f"d.jsonl.{i}") for i in (1, 2, 3)]
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=3 * LINE + 10, backups=3))
    with sink:
        _emit(sink, range(10, 22), until)  # d.jsonl.3 .. d.jsonl: 10-12, 13-15, 16-18, 19-21
        assert [_frames(f) for f in backups] == [[16, 17, 18], [13, 14, 15], [10, 11, 12]]
        path.unlink()
        _emit(sink, range(22, 25), until)  # a new file, no rotation: nothing to rotate
        assert _frames(path) == [22, 23, 24]
        assert [_frames(f) for f in backups] == [[16, 17, 18], [13, 14, 15], [10, 11, 12]]
        path.rename(tmp_path / "moved.jsonl")  # logrotate without copytruncate
        _emit(sink, range(25, 26), until)
        _emit(sink, range(26, 29), until)  # the new file fills and rotates as usual
    assert _frames(tmp_path / "moved.jsonl") == [22, 23, 24]
    assert _frames(path) == [28]
    assert [_frames(f) for f in backups] == [[25, 26, 27], [16, 17, 18], [13, 14, 15]]
    assert sink.dropped == 0 and sink.written == 19 and sink.rotations == 4
    assert [level for level, _ in _sink_log(caplog)] == []


def test_a_rotation_fills_a_gap_in_the_backups_instead_of_pushing_them_out(
    tmp_path: Path, until: Callable[..., bool]
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"frame": 1}) + "\n")
    path.with_name("d.jsonl.2").write_text(json.dumps({"frame": 0}) + "\n")  # d.jsonl.1 deleted, or a
    path.with_name("d.jsonl.3").write_text(json.dumps({"frame": -1}) + "\n")  # rotation failed half-way
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=20, backups=3))
    with sink:
        _emit(sink, range(10, 11), until)
    assert [_frames(path.with_name(f"d.jsonl.{i}")) for i in (1, 2, 3)] == [[1], [0], [-1]]
    assert _frames(path) == [10]


def test_a_rotation_that_fails_appends_past_max_bytes_and_logs_once(
    tmp_path: Path, until: Callable[..., bool], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "d.jsonl"
    blocker = path.with_name("d.jsonl.1")
    blocker.mkdir()  # a directory with a file in it: renaming d.jsonl onto it fails
    (blocker / "x").touch()
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=2 * LINE, backups=1))
    with sink:
        _emit(sink, range(10, 16), until)
        assert _frames(path) == list(range(10, 16))  # nothing dropped
        shutil.rmtree(blocker)
        _emit(sink, range(16, 17), until)
    assert _frames(blocker) == list(range(10, 16)) and _frames(path) == [16]
    assert sink.dropped == 0 and sink.rotations == 1
    log = _sink_log(caplog)
    assert [level for level, _ in log] == ["ERROR", "WARNING"]
    assert "cannot rotate" in log[0][1] and "rotating" in log[1][1]


def test_sighup_makes_the_sink_reopen_its_file_before_its_next_write(
    tmp_path: Path, disk: Disk, until: Callable[..., bool]
) -> None:
    path = tmp_path / "d.jsonl"
    stops: list[str] = []
    previous = signal.getsignal(signal.SIGHUP)
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path)))
    with stop_on_signals(stops.append), sink:
        _emit(sink, range(10, 12), until)
        assert disk.opens == 1
        before = reopen_requests()
        signal.raise_signal(signal.SIGHUP)  # the process's default action would end pytest
        assert reopen_requests() == before + 1
        _emit(sink, range(12, 14), until)
        assert disk.opens == 2
    assert _frames(path) == [10, 11, 12, 13]
    assert stops == []  # SIGHUP stops nothing
    assert signal.getsignal(signal.SIGHUP) == previous


# -- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_drops_whole_lines_and_logs_once_per_outage(
    tmp_path: Path, disk: Disk, until: Callable[..., bool], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "d.jsonl"
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=0))
    for n in (10, 11):
        sink.emit(_result(n))  # queued before the writer starts: one batch
    disk.free = 2 * LINE + LINE // 2
    with sink:
        assert until(lambda: sink.written == 2)
        _emit(sink, range(12, 20), until)  # 12 is cut half-way by ENOSPC, the others get nothing
        assert _frames(path) == [10, 11]  # the half line was cut off again
        assert sink.dropped == 8 and sink.written == 2
        for n in range(20, 25):  # a batch of five on the full disk: none of it stays
            sink.emit(_result(n))
        assert until(lambda: sink.dropped == 13)
        assert _frames(path) == [10, 11]
        disk.free = 10**9  # space freed
        _emit(sink, range(25, 27), until)
    assert _frames(path) == [10, 11, 25, 26]
    assert sink.dropped == 13 and sink.written == 4
    log = _sink_log(caplog)
    assert [level for level, _ in log] == ["ERROR", "WARNING"]
    assert "No space left on device" in log[0][1]
    assert "13 lines were dropped" in log[1][1]


def test_a_full_disk_never_rotates_empty_files_into_the_backups(
    tmp_path: Path, disk: Disk, until: Callable[..., bool], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "d.jsonl"
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=3 * LINE + 10, backups=2))
    disk.free = 7 * LINE + LINE // 2
    with sink:
        _emit(sink, range(10, 40), until)  # 10-16 fit, 17 is cut half-way, 18-39 get nothing
        backups = [_frames(path.with_name(f"d.jsonl.{i}")) for i in (1, 2)]
        assert (backups, _frames(path)) == ([[13, 14, 15], [10, 11, 12]], [16])
        assert sink.rotations == 2 and sink.dropped == 23
        disk.free = 10**9
        _emit(sink, range(40, 41), until)
    assert _frames(path) == [16, 40]
    assert [_frames(path.with_name(f"d.jsonl.{i}")) for i in (1, 2)] == [[13, 14, 15], [10, 11, 12]]
    assert [level for level, _ in _sink_log(caplog)] == ["ERROR", "WARNING"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (needs root: skipped where mounting is not allowed)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs mount(8) and root")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_real_full_disk_leaves_complete_lines_and_the_sink_recovers(
    small_disk: Path, until: Callable[..., bool], caplog: pytest.LogCaptureFixture
) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * 40 * 1024)
    path = small_disk / "d.jsonl"
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=8 * 1024, backups=5))
    with sink:
        for n in range(1, 301):  # ~36 KiB of lines for ~24 KiB of room
            sink.emit(_result(n))
        assert until(lambda: sink.written + sink.dropped == 300)
        assert sink.dropped > 0
        filler.unlink()
        sink.emit(_result(301))
        assert until(lambda: sink.written + sink.dropped == 301)
    files = [*sorted(small_disk.glob("d.jsonl.*"), key=lambda f: -int(f.suffix[1:])), path]
    frames = [_frames(f) for f in files]  # every file ends with a complete line
    assert all(frames), "an empty file was rotated into the backups"
    flat = [n for chunk in frames for n in chunk]
    assert flat == sorted(flat) and flat[-1] == 301
    assert sink.written == len(flat) and sink.dropped == 301 - len(flat)
    assert [level for level, _ in _sink_log(caplog)] == ["ERROR", "WARNING"]


# -- the daemon as a process: SIGHUP, logrotate, a closed stdout ----------------------------------


def _looping_config(
    config_file: Callable[..., Path], models: dict[str, Path], video: Path, sinks: str
) -> Path:
    return config_file(
        f"model: {{path: {models['det']}, num_threads: 1}}\n"
        f"source: {{type: opencv, input: {video}, loop: true, fps: 200}}\n"
        f"sinks: {sinks}\n"
    )


def test_a_running_daemon_follows_a_moved_file_and_survives_sighup(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    config_file: Callable[..., Path],
    cli_process: Callable[..., subprocess.Popen],
    until: Callable[..., bool],
) -> None:
    out, moved = tmp_path / "live.jsonl", tmp_path / "live.jsonl.old"
    config = _looping_config(
        config_file, tiny_models, video_file, f"[{{type: jsonl, path: {out}, max_bytes: 0}}]"
    )
    proc = cli_process("run", "--config", str(config))
    try:
        assert until(lambda: _count(out) >= 5, timeout=60)
        out.rename(moved)  # what logrotate does, with no postrotate script
        assert until(lambda: _count(out) >= 5, timeout=60)  # a new file at the path
        proc.send_signal(signal.SIGHUP)
        count = _count(out)
        assert until(lambda: _count(out) > count + 10 or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, "SIGHUP ended the daemon"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert code == 0, stderr
    frames = _frames(moved) + _frames(out)
    assert frames == list(range(1, len(frames) + 1))  # nothing lost or doubled across the move
    assert [line for line in stderr.splitlines() if "SIGHUP" in line] == [
        "INFO edgecnn.daemon.signals: SIGHUP: reopening output files before their next write"
    ]
    assert "ERROR" not in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("under_systemd", [False, True], ids=["pipe", "journal"])
def test_a_closed_stdout_pipe_stops_the_daemon_with_exit_0_or_1_under_systemd(
    tiny_models: dict[str, Path],
    video_file: Path,
    config_file: Callable[..., Path],
    cli_process: Callable[..., subprocess.Popen],
    under_systemd: bool,
) -> None:
    """``| head`` ends the run (exit 0); under systemd stdout is the journal, and losing it
    must fail the service (exit 1), or ``Restart=on-failure`` would leave it dead."""
    config = _looping_config(config_file, tiny_models, video_file, "[{type: jsonl}]")  # stdout
    env = {"INVOCATION_ID": "0123456789abcdef0123456789abcdef"} if under_systemd else None
    proc = cli_process("run", "--config", str(config), env=env)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["frame"] == 1
        proc.stdout.close()  # `edgecnn run ... | head -n 1`
        code = proc.wait(timeout=60)  # a source that loops: only the closed pipe can end it
    finally:
        proc.kill()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    lines = [line for line in stderr.splitlines() if "edgecnn.sinks.jsonl" in line]
    if under_systemd:
        assert code == 1, stderr
        assert lines == [
            "ERROR edgecnn.sinks.jsonl: jsonl sink: stdout, the journal's stream, was closed: "
            "stopping (exit code 1)"
        ]
        assert "stopped (stdout (the journal's stream) closed)" in stderr
    else:
        assert code == 0, stderr
        assert lines == ["INFO edgecnn.sinks.jsonl: jsonl sink: stdout was closed (broken pipe): stopping"]
        assert "stopped (stdout closed)" in stderr and "ERROR" not in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


def test_request_stop_reaches_the_daemon_only_within_stop_on_signals() -> None:
    stops: list[tuple[str, bool]] = []
    assert request_stop("stdout closed") is False
    with stop_on_signals(lambda reason, failed=False: stops.append((reason, failed))):
        assert request_stop("stdout closed") is True
        assert request_stop("journal closed", failed=True) is True
    assert request_stop("again") is False
    assert stops == [("stdout closed", False), ("journal closed", True)]
