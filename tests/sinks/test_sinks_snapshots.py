"""The snapshots sink: rate limit in capture time, per label, the disk bound, the queue."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edgecnn.sinks import build_sink
from edgecnn.sinks.base import Detection, SinkContext
from edgecnn.sinks.draw import color_for
from edgecnn.sinks.snapshots import NAME_RE, SnapshotsConfig, SnapshotSink

PERSON = Detection("person", 0, 0.9, (40.0, 30.0, 200.0, 220.0))
DOG = Detection("dog", 1, 0.6, (220.0, 60.0, 300.0, 200.0))


def run(config: SnapshotsConfig, tmp_path: Path, results: list) -> tuple[SnapshotSink, list[str]]:
    """Emit ``results`` through a started sink, stop it, return it and the files' names (sorted)."""
    sink = SnapshotSink(config, state_dir=tmp_path)
    with sink:
        for result in results:
            sink.emit(result)
    return sink, sorted(p.name for p in sink.directory.iterdir())


def frames_of(names: list[str]) -> list[int]:
    return [int(name.split("_")[1]) for name in names]


def cfg(**kw: object) -> SnapshotsConfig:
    return SnapshotsConfig(type="snapshots", queue_size=64, **kw)


def test_snapshots_config_bounds() -> None:
    c = SnapshotsConfig(type="snapshots")
    assert (c.min_interval_s, c.per_label, c.max_files, c.max_bytes, c.queue_size) == (
        10.0, False, 1000, 200 * 1024 * 1024, 4)
    for bad in ({"min_interval_s": -1}, {"max_files": 0}, {"max_bytes": 10}, {"min_score": 2}, {"what": 1}):
        with pytest.raises(ValidationError):
            SnapshotsConfig(type="snapshots", **bad)


def test_snapshots_rate_limit_in_capture_time(tmp_path: Path, make_result, gray_frame) -> None:
    image = gray_frame()
    # 30 frames, 0.1 s apart; a person in each, a dog from frame 5 on; frame 31 has nothing
    results = [make_result(i, (PERSON, DOG) if i >= 5 else (PERSON,), image=image) for i in range(1, 31)]
    results.append(make_result(31, (), image=image))
    sink, names = run(cfg(min_interval_s=0.95), tmp_path, results)
    assert frames_of(names) == [1, 11, 21] and sink.written == 3 and sink.dropped == 0
    assert all(NAME_RE.match(n) for n in names)
    assert names[0] == "20261130T120000.100Z_00000001_person.jpg"
    assert names[1].endswith("_00000011_dog+person.jpg")
    assert sink.directory == tmp_path / "snapshots"  # the state directory by default

    _, names = run(cfg(min_interval_s=0.95, per_label=True, directory=tmp_path / "per"), tmp_path, results)
    assert frames_of(names) == [1, 5, 11, 15, 21, 25]  # person due at 1, 11, 21; dog at 5, 15, 25

    _, names = run(cfg(min_interval_s=0.95, labels=["dog"], directory=tmp_path / "dog"), tmp_path, results)
    assert frames_of(names) == [5, 15, 25]
    _, names = run(cfg(min_interval_s=0, min_score=0.8, directory=tmp_path / "sure"), tmp_path, results[:3])
    assert frames_of(names) == [1, 2, 3]
    _, names = run(cfg(min_interval_s=0, min_score=0.95, directory=tmp_path / "none"), tmp_path, results)
    assert names == []


def test_snapshots_have_boxes_drawn(tmp_path: Path, make_result, gray_frame) -> None:
    _, names = run(cfg(jpeg_quality=95), tmp_path, [make_result(1, (PERSON, DOG), image=gray_frame())])
    image = cv2.imread(str(tmp_path / "snapshots" / names[0]))
    assert image.shape == (240, 320, 3)
    for det in (PERSON, DOG):
        x1, y1, _, y2 = (round(v) for v in det.box)
        patch = image[(y1 + y2) // 2 - 2:(y1 + y2) // 2 + 3, x1 - 1:x1 + 2].reshape(-1, 3).astype(float)
        assert np.linalg.norm(patch - np.array(color_for(det.class_id)), axis=1).min() < 60
    assert np.abs(image[5, 5].astype(int) - 128).max() < 8  # away from the boxes: untouched


def test_snapshots_disk_bound_deletes_the_oldest(tmp_path: Path, make_result, gray_frame) -> None:
    image = gray_frame()
    results = [make_result(i, (PERSON,), image=image) for i in range(1, 13)]
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "notes.txt").write_text("not a snapshot")
    sink, names = run(cfg(min_interval_s=0, max_files=5), tmp_path, results)
    assert frames_of([n for n in names if n != "notes.txt"]) == [8, 9, 10, 11, 12]
    assert "notes.txt" in names and sink.deleted == 7

    # by bytes: every snapshot here has the same size
    size = (tmp_path / "snapshots" / names[0]).stat().st_size
    by_bytes = cfg(min_interval_s=0, max_bytes=int(3.5 * size), directory=tmp_path / "b")
    sink, names = run(by_bytes, tmp_path, results)
    assert frames_of(names) == [10, 11, 12]
    assert sum((tmp_path / "b" / n).stat().st_size for n in names) <= 3.5 * size

    # a restarted sink counts the snapshots already there
    later = [make_result(i, (PERSON,), image=image) for i in range(13, 15)]
    _, names = run(cfg(min_interval_s=0, max_files=4), tmp_path, later)
    assert frames_of([n for n in names if n != "notes.txt"]) == [11, 12, 13, 14]


def test_snapshots_drop_when_the_writer_is_behind(tmp_path: Path, make_result, gray_frame) -> None:
    big = gray_frame(1920, 1080)
    results = [make_result(i, (PERSON,), image=big) for i in range(1, 201)]
    sink, names = run(SnapshotsConfig(type="snapshots", min_interval_s=0, queue_size=1), tmp_path, results)
    assert sink.dropped > 0  # emit() never waited for the writer
    assert sink.written == len(names) == 200 - sink.dropped


def test_snapshots_build_through_the_registry(tmp_path: Path) -> None:
    sink = build_sink(SnapshotsConfig(type="snapshots"), SinkContext(device="cam", state_dir=tmp_path))
    assert isinstance(sink, SnapshotSink) and sink.directory == tmp_path / "snapshots"
