"""The snapshots sink: rate limit on the monotonic clock, per label, the disk bound, the queue,
a full disk (a real tmpfs), a directory removed while running."""

from __future__ import annotations

import logging
import shutil
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


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(config: SnapshotsConfig, tmp_path: Path, results: list, tick: float = 0.1,
        ) -> tuple[SnapshotSink, list[str]]:
    """Emit ``results`` through a started sink, ``tick`` monotonic seconds apart (a 10 fps camera),
    stop it, return it and the files' names (sorted)."""
    clock = FakeClock()
    sink = SnapshotSink(config, state_dir=tmp_path, clock=clock)
    with sink:
        for result in results:
            clock.now += tick
            sink.emit(result)
    return sink, sorted(p.name for p in sink.directory.iterdir())


def noise_frame(seed: int) -> np.ndarray:
    """200x150 of noise: about 24 KB as a JPEG, so two fill most of a 64 KiB disk."""
    return np.random.default_rng(seed).integers(0, 256, (150, 200, 3), dtype=np.uint8)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "edgecnn.sinks.snapshots" and r.levelno == level]


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


def test_snapshots_rate_limit(tmp_path: Path, make_result, gray_frame) -> None:
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


def test_per_object_snapshots_one_file_per_new_tracked_object(tmp_path: Path, make_result, gray_frame,
                                                              ) -> None:
    import dataclasses

    image = gray_frame()

    def new(ident: int, label: str, score: float) -> dict:
        return {"type": "new", "id": ident, "label": label, "score": score, "box": [0, 0, 1, 1]}

    events = {2: (new(1, "person", 0.9),), 4: (new(2, "dog", 0.6), new(3, "person", 0.4)), 6: ()}
    events[7] = ({**new(1, "person", 0.9), "type": "end"},)
    results = [
        dataclasses.replace(make_result(i, (PERSON,), image=image), events=events.get(i, ()))
        for i in range(1, 9)
    ]
    # no rate limit: frame 4 gives two files; frames without a new object give none (end: none)
    _, names = run(cfg(per_object=True), tmp_path, results)
    assert [(int(n.split("_")[1]), n.rsplit("_", 1)[1]) for n in names] == [
        (2, "person-1.jpg"),
        (4, "dog-2.jpg"),
        (4, "person-3.jpg"),
    ]
    assert all(NAME_RE.match(n) for n in names)
    only = cfg(per_object=True, labels=["person"], min_score=0.5, directory=tmp_path / "p")
    _, names = run(only, tmp_path, results)
    assert [n.rsplit("_", 1)[1] for n in names] == ["person-1.jpg"]


def test_snapshots_rate_limit_survives_a_wall_clock_step_back(tmp_path: Path, make_result, gray_frame,
                                                              ) -> None:
    # after frame 10 NTP steps the wall clock back an hour; the monotonic clock goes on
    image = gray_frame()
    results = [make_result(i, (PERSON,), seconds=i / 10 - (3600 if i > 10 else 0), image=image)
               for i in range(1, 31)]
    sink, names = run(cfg(min_interval_s=0.95), tmp_path, results)
    assert sorted(frames_of(names)) == [1, 11, 21] and sink.dropped == 0
    assert names[0].startswith("20261130T110001.100Z_00000011")  # names keep the capture time


def test_snapshots_full_disk_leaves_no_temp_files(small_disk: Path, make_result, wait_until, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edgecnn.sinks.snapshots")
    directory = small_disk / "snaps"
    directory.mkdir()
    stale = directory / ".20261130T115959.000Z_00000000_person.jpg.tmp"  # from a crash mid-write
    stale.write_bytes(b"half a jpeg")
    sink = SnapshotSink(cfg(min_interval_s=0, directory=directory))
    with sink:
        assert not stale.exists()
        for i in range(1, 11):
            sink.emit(make_result(i, (PERSON,), image=noise_frame(i)))
        assert wait_until(lambda: sink.written + sink.dropped == 10)
        names = sorted(p.name for p in directory.iterdir())
        assert 1 <= sink.written == len(names) < 10 and sink.dropped == 10 - sink.written
        assert all(NAME_RE.match(n) for n in names), names  # no .tmp left behind
        errors = messages(caplog, logging.ERROR)
        assert len(errors) == 1 and "No space left on device" in errors[0], errors  # one line per outage

        for name in names:  # space again: the next snapshot is written and the recovery logged
            (directory / name).unlink()
        sink.emit(make_result(11, (PERSON,), image=noise_frame(11)))
        assert wait_until(lambda: sink.written + sink.dropped == 11)
    assert frames_of(sorted(p.name for p in directory.iterdir())) == [11]
    assert messages(caplog, logging.INFO) == [
        f"snapshots: writing to {directory} again; {sink.dropped} snapshots dropped meanwhile"]


def test_snapshots_directory_removed_while_running_is_created_again(tmp_path: Path, make_result, gray_frame,
                                                                   wait_until, caplog) -> None:
    sink = SnapshotSink(cfg(min_interval_s=0), state_dir=tmp_path)
    with sink:
        sink.emit(make_result(1, (PERSON,), image=gray_frame()))
        assert wait_until(lambda: sink.written == 1)
        shutil.rmtree(sink.directory)
        sink.emit(make_result(2, (PERSON,), image=gray_frame()))
        assert wait_until(lambda: sink.written + sink.dropped == 2)
    assert sink.written == 2 and sink.dropped == 0
    assert frames_of(sorted(p.name for p in sink.directory.iterdir())) == [2]
    assert messages(caplog, logging.WARNING) == [f"snapshots: {sink.directory} was removed; created it again"]


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
