"""`edgecnn data synth-video`: a readable video whose MOT ground truth is where the shapes are."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.data.synth_video import write_synth_video

runner = CliRunner()


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_the_ground_truth_boxes_are_where_the_frames_change(tmp_path: Path) -> None:
    truth = write_synth_video(tmp_path / "one.avi", frames=16, objects=1, imgsz=96, seed=4)
    frames = _frames(tmp_path / "one.avi")
    assert len(frames) == 16 and frames[0].shape == (96, 96, 3)
    boxes = {t.frame: t.box for t in truth}
    assert sorted(boxes) == list(range(1, 17)) and {t.track_id for t in truth} == {1}
    assert boxes[1] != boxes[16]  # it moves
    for k in range(1, 12):
        # the background stands still: only the shape changes pixels, inside its two boxes
        diff = np.abs(frames[k - 1].astype(int) - frames[k + 4].astype(int)).max(axis=2) > 60
        inside = np.zeros_like(diff)
        for box in (boxes[k], boxes[k + 5]):
            x1, y1, x2, y2 = (int(v) for v in box)
            inside[max(y1 - 2, 0) : y2 + 2, max(x1 - 2, 0) : x2 + 2] = True
        assert diff.any() and not (diff & ~inside).any(), k


def test_objects_keep_ids_classes_and_sizes_and_the_file_is_mot(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    truth = write_synth_video(path, frames=30, objects=3, imgsz=128, num_classes=2, seed=1)
    again = write_synth_video(tmp_path / "again.avi", frames=30, objects=3, imgsz=128, num_classes=2, seed=1)
    assert again == truth
    lines = (tmp_path / "clip.gt.txt").read_text().splitlines()
    assert lines == [t.mot_line() for t in truth]
    fields = lines[0].split(",")
    assert len(fields) == 9 and (fields[0], fields[1], fields[6]) == ("1", "1", "1")
    assert 0 < float(fields[8]) <= 1
    for t in truth:
        x1, y1, x2, y2 = t.box
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128 and t.class_id in (0, 1)
    per_object = {i: [t for t in truth if t.track_id == i] for i in (1, 2, 3)}
    assert all(len(rows) >= 25 for rows in per_object.values())  # hidden completely: rarely
    for rows in per_object.values():
        assert len({t.class_id for t in rows}) == 1
        whole = [t for t in rows if t.visibility == 1.0]
        assert len({(t.box[2] - t.box[0], t.box[3] - t.box[1]) for t in whole}) <= 2  # (rounding)


def test_the_command_writes_both_files_and_refuses_other_containers(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth-video", str(tmp_path / "c.avi"), "--frames", "5"])
    assert result.exit_code == 0, result.output
    assert "wrote 5 frames with 3 moving objects" in result.output
    assert len(_frames(tmp_path / "c.avi")) == 5 and (tmp_path / "c.gt.txt").is_file()
    result = runner.invoke(app, ["data", "synth-video", str(tmp_path / "c.mp4")])
    assert result.exit_code == 2 and "name it .avi" in result.output
