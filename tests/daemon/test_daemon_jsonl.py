"""The JSON-lines sink: record schema, size rotation with N backups, stdout, dropping."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from edgecnn.sinks import build_sink
from edgecnn.sinks.base import Detection, FrameResult, SinkContext
from edgecnn.sinks.jsonl import JsonlConfig, JsonlSink


def _result(n: int, detections: int = 2) -> FrameResult:
    return FrameResult(
        ts=f"2026-11-30T12:00:{n % 60:02d}.000Z",
        frame=n,
        source="cam",
        model="tiny_det",
        latency_ms={"pre": 1.0, "infer": 5.25, "post": 0.125},
        detections=tuple(
            Detection("person", 0, 0.5 + i / 10, (1.0, 2.0, 30.5, 40.25)) for i in range(detections)
        ),
        image=np.zeros((4, 4, 3), np.uint8),
    )


def test_records_follow_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "out" / "d.jsonl"
    sink = build_sink(JsonlConfig(type="jsonl", path=str(path)), SinkContext(device="d"))
    with sink:
        sink.emit(_result(1))
        sink.emit(_result(2, detections=0))
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "ts": "2026-11-30T12:00:01.000Z",
            "frame": 1,
            "source": "cam",
            "model": "tiny_det",
            "latency_ms": {"pre": 1.0, "infer": 5.25, "post": 0.125},
            "detections": [
                {"label": "person", "class_id": 0, "score": 0.5, "box": [1.0, 2.0, 30.5, 40.25]},
                {"label": "person", "class_id": 0, "score": 0.6, "box": [1.0, 2.0, 30.5, 40.25]},
            ],
        },
        {
            "ts": "2026-11-30T12:00:02.000Z",
            "frame": 2,
            "source": "cam",
            "model": "tiny_det",
            "latency_ms": {"pre": 1.0, "infer": 5.25, "post": 0.125},
            "detections": [],
        },
    ]


def test_skip_empty_keeps_frames_with_tracking_events_and_the_final_record(tmp_path: Path) -> None:
    """An object ends on a frame without detections, and one more at stop: with skip_empty
    only the empty frame without events is left out."""
    path = tmp_path / "d.jsonl"
    end = {"type": "end", "id": 3, "label": "person", "end": "2026-11-30T12:00:01.000Z"}
    final = FrameResult(
        ts="2026-11-30T12:00:09.000Z", frame=3, source="cam", model="tiny_det", latency_ms={},
        detections=(), events=({**end, "id": 4},), final=True,
    )
    config = JsonlConfig(type="jsonl", path=str(path), skip_empty=True)
    with build_sink(config, SinkContext(device="d")) as sink:
        sink.emit(_result(1, detections=0))
        sink.emit(dataclasses.replace(_result(2, detections=0), events=(end,)))
        sink.emit(final)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["frame"], r["events"]) for r in records] == [(2, [end]), (3, [{**end, "id": 4}])]
    assert "final" not in records[0] and records[1]["final"] is True
    assert (records[1]["detections"], records[1]["latency_ms"]) == ([], {})


@pytest.mark.parametrize("backups", [3, 1])
def test_rotation_by_size_keeps_n_backups(tmp_path: Path, backups: int) -> None:
    path = tmp_path / "d.jsonl"
    line_size = len(json.dumps(_result(10).to_record(), separators=(",", ":"))) + 1
    max_bytes = 5 * line_size + 10  # five records of this size per file
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=max_bytes, backups=backups))
    with sink:
        for n in range(10, 60):
            sink.emit(_result(n))
    files = [path] + [path.with_name(f"d.jsonl.{i}") for i in range(1, backups + 1)]
    assert all(f.exists() for f in files)
    assert not path.with_name(f"d.jsonl.{backups + 1}").exists()
    frames = []
    for f in reversed(files):  # oldest backup first
        assert f.stat().st_size <= max_bytes
        frames += [json.loads(line)["frame"] for line in f.read_text().splitlines()]
    assert frames == list(range(60 - len(frames), 60))  # the newest records, in order, none lost in between
    assert len(frames) == 5 * (backups + 1)
    assert sink.rotations == 50 // 5 - 1


def test_appends_to_an_existing_file_and_counts_its_size(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"old": 1}\n' * 3)
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(path), max_bytes=40, backups=1))
    with sink:
        sink.emit(_result(1, detections=0))
    assert path.with_name("d.jsonl.1").read_text() == '{"old": 1}\n' * 3
    assert json.loads(path.read_text())["frame"] == 1


def test_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    sink = JsonlSink(JsonlConfig(type="jsonl"))
    with sink:
        for n in range(3):
            sink.emit(_result(n))
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0, 1, 2]


def test_emit_never_blocks_and_counts_what_it_drops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    sink = JsonlSink(JsonlConfig(type="jsonl", path=str(tmp_path / "d.jsonl"), queue_size=2))
    original = sink._write
    monkeypatch.setattr(sink, "_write", lambda lines: (gate.wait(), original(lines)))  # a stuck disk
    sink.start()
    for n in range(10):
        sink.emit(_result(n))  # returns at once even though nothing is written
    assert sink.dropped >= 7
    gate.set()
    sink.stop()
    assert sink.written + sink.dropped == 10
