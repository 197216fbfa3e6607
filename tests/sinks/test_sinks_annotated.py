"""The annotated sink (``run --save``): names after the image, every frame kept when the disk
is slow, the file cap, drawn boxes (draw_detections as the oracle)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.sinks import build_sink
from edgecnn.sinks.annotated import AnnotatedConfig, AnnotatedSink
from edgecnn.sinks.base import Detection, FrameResult, SinkContext
from edgecnn.sinks.draw import draw_detections

PERSON = Detection("person", 0, 0.9, (40.0, 30.0, 200.0, 220.0))


def _config(tmp_path: Path, **kwargs: object) -> AnnotatedConfig:
    return AnnotatedConfig(type="annotated", directory=tmp_path / "out", **kwargs)


def test_files_are_named_after_their_image_or_frame_and_show_the_boxes(
    tmp_path: Path, make_result: Callable[..., FrameResult], gray_frame: Callable[..., np.ndarray]
) -> None:
    frame = gray_frame()
    results = [
        dataclasses.replace(make_result(1, (PERSON,), image=frame), file="/data/a/street.png"),
        dataclasses.replace(make_result(2, image=frame), file="/data/b/street.png"),  # same stem
        make_result(3, (PERSON,), image=frame),  # a camera frame: no file
        make_result(4, (PERSON,)),  # no image: nothing to draw
    ]
    sink = build_sink(_config(tmp_path), SinkContext(device="cam"))
    assert isinstance(sink, AnnotatedSink)
    with sink:
        for result in results:
            sink.emit(result)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["frame_000003.jpg", "street.jpg", "street_000002.jpg"]
    assert sink.written == 3 and sink.dropped == 0
    saved = cv2.imread(str(out / "street.jpg")).astype(int)
    drawn = draw_detections(frame, (PERSON,)).astype(int)
    ink = (drawn != frame).any(axis=2)  # the box and its tag
    assert ink.sum() > 500
    near_drawn = np.abs(saved - drawn)[ink].mean()
    assert near_drawn < 0.4 * np.abs(saved - frame.astype(int))[ink].mean()  # thin lines: JPEG blurs them
    plain = cv2.imread(str(out / "street_000002.jpg")).astype(int)
    assert np.abs(plain - frame.astype(int)).mean() < 1.0  # no detection, nothing drawn


def test_a_slow_disk_loses_no_frame_and_only_detections_skips_empty_frames(
    tmp_path: Path,
    make_result: Callable[..., FrameResult],
    gray_frame: Callable[..., np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write = AnnotatedSink._write

    def slow_write(self: AnnotatedSink, result: FrameResult) -> None:
        time.sleep(0.02)  # a disk slower than the frames come
        write(self, result)

    monkeypatch.setattr(AnnotatedSink, "_write", slow_write)
    sink = AnnotatedSink(_config(tmp_path, queue_size=1, only_detections=True))
    with sink:
        for i in range(1, 21):
            sink.emit(make_result(i, (PERSON,) if i % 2 else (), image=gray_frame(32, 24)))
    assert sink.written == 10 and sink.dropped == 0
    assert len(list((tmp_path / "out").iterdir())) == 10


def test_max_files_stops_writing_with_one_warning(
    tmp_path: Path,
    make_result: Callable[..., FrameResult],
    gray_frame: Callable[..., np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = AnnotatedSink(_config(tmp_path, max_files=3))
    with caplog.at_level(logging.WARNING), sink:
        for i in range(1, 8):
            sink.emit(make_result(i, image=gray_frame(32, 24)))
    assert sink.written == 3 and sink.dropped == 4
    assert len(list((tmp_path / "out").iterdir())) == 3
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("annotated")]
    assert warnings == [
        f"annotated: wrote 3 files to {tmp_path / 'out'}, the most max_files allows; not writing more"
    ]


def test_the_masks_from_the_context_are_shaded(
    tmp_path: Path, make_result: Callable[..., FrameResult], gray_frame: Callable[..., np.ndarray]
) -> None:
    bottom = ((0.0, 0.75), (1.0, 0.75), (1.0, 1.0), (0.0, 1.0))
    sink = build_sink(_config(tmp_path), SinkContext(device="cam", masks=(bottom,)))
    with sink:
        sink.emit(make_result(1, image=gray_frame(320, 240, value=128)))
    saved = cv2.imread(str(tmp_path / "out" / "frame_000001.jpg")).astype(int)
    assert abs(saved[200:236, 10:310].mean() - 84) < 4 and abs(saved[10:150].mean() - 128) < 2
