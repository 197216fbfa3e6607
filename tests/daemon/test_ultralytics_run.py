"""``edgecnn run --model EXPORT.tflite --source S --jsonl OUT`` with no other flags: an
Ultralytics export (stand-ins from ``tests/ultralytics_exports.py``) gives its labels and boxes
in frame pixels, whatever its head (YOLOv8-style boxes as fractions or pixels, either
orientation, end-to-end rows, float or int8), and a model edgecnn does not run is one line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import ultralytics_exports as ux

pytestmark = pytest.mark.tf

FRAME_W, FRAME_H = 128, 64  # not the model's 64x64: letterboxed with 16 px bands above and below


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one 128x64 image (the stand-ins ignore what it shows)."""
    folder = tmp_path_factory.mktemp("frames")
    cv2.imwrite(str(folder / "frame.png"), np.full((FRAME_H, FRAME_W, 3), 80, np.uint8))
    return folder


def _in_frame(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """Input pixels (64x64) to frame pixels, worked out by hand for the 128x64 frame: the frame
    is halved to 64x32 and centred, so y is offset by (64 - 32) / 2 = 16."""
    return [x1 / 0.5, (y1 - 16) / 0.5, x2 / 0.5, (y2 - 16) / 0.5]


EXPECTED = [(label, score, _in_frame(*box)) for label, score, *box in ux.EXPECTED_DETECTIONS]


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("v8", 0.01),  # (1, 7, 84), boxes as fractions of the input: Ultralytics' TFLite export
        ("v8_int8", 0.3),  # the same with int8 input and output: steps of 0.0037 x 64 px
        ("v8_pixels", 0.01),  # boxes in input pixels, temp_meta.txt of an older export
        ("v8_t", 0.01),  # (1, 84, 7), pixels: other converters
        ("e2e", 0.01),  # (1, 10, 6) rows x1, y1, x2, y2, score, class
        ("e2e_int8", 0.6),  # steps of 0.0078 x 64 px
    ],
)
def test_run_gives_the_detections_with_no_flags(
    ultralytics_models: dict[str, Path],
    frames: Path,
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess],
    jsonl: Any,
    name: str,
    tolerance: float,
) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli("run", "--model", str(ultralytics_models[name]), "--source", str(frames), "--jsonl", str(out))
    assert proc.returncode == 0, proc.stderr
    (record,) = jsonl(out)
    found = record["detections"]
    assert [d["label"] for d in found] == [label for label, _, _ in EXPECTED], found
    for detection, (_, score, box) in zip(found, EXPECTED, strict=True):
        assert detection["score"] == pytest.approx(score, abs=0.01)
        np.testing.assert_allclose(detection["box"], box, atol=tolerance)
    assert record["model"] == name


def test_run_a_classifier_and_override_with_flags(
    ultralytics_models: dict[str, Path],
    frames: Path,
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess],
    jsonl: Any,
) -> None:
    out = tmp_path / "cls.jsonl"
    proc = cli("run", "--model", str(ultralytics_models["cls"]), "--source", str(frames), "--jsonl", str(out))
    assert proc.returncode == 0, proc.stderr
    assert [(d["label"], d["score"]) for d in jsonl(out)[0]["detections"]] == [("car", pytest.approx(0.7))]

    out = tmp_path / "flags.jsonl"  # flags win: labels, and a threshold that keeps the 0.2 car
    model = str(ultralytics_models["v8"])
    flags = ["--labels", "a,b,c", "--conf", "0.1"]
    proc = cli("run", "--model", model, "--source", str(frames), "--jsonl", str(out), *flags)
    assert proc.returncode == 0, proc.stderr
    assert [d["label"] for d in jsonl(out)[0]["detections"]] == ["a", "c", "b"]


def test_run_refuses_what_edgecnn_does_not_run_in_one_line(
    ultralytics_models: dict[str, Path],
    frames: Path,
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess],
) -> None:
    plain = ultralytics_models["plain"].read_bytes()
    pose = tmp_path / "pose.tflite"
    pose.write_bytes(ux.append_metadata(plain, ux.metadata(task="pose", kpt_shape=[17, 3])))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(ux.append_metadata(plain, ux.metadata(names=["person", "car", "dog"])))
    for path, message in (
        (pose, f"{pose} is an Ultralytics pose model; edgecnn runs detect and classify models"),
        (
            bad,
            f"{bad}: Ultralytics metadata (metadata.json): names must be a mapping of class id to name, got",
        ),
    ):
        proc = cli("run", "--model", str(path), "--source", str(frames), "--jsonl", str(tmp_path / "x.jsonl"))
        assert proc.returncode == 2
        assert proc.stderr.startswith(f"edgecnn: error: {message}"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_model_without_metadata_runs_from_a_config_with_an_anchor_free_layout(
    ultralytics_models: dict[str, Path],
    frames: Path,
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess],
    config_file: Callable[..., Path],
    jsonl: Any,
) -> None:
    """``plain`` is the yolo_v8 stand-in without its metadata: ``model.layout`` and labels make it run."""
    out = tmp_path / "plain.jsonl"
    config = config_file(
        f"model: {{path: {ultralytics_models['plain']}, task: detect, labels: [p, c, d], layout: yolo_v8}}\n"
        f"source: {{type: opencv, input: {frames}}}\n"
        "thresholds: 0.25\niou: 0.7\n"
        f"sinks: [{{type: jsonl, path: {out}}}]\n"
    )
    proc = cli("run", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    found = jsonl(out)[0]["detections"]
    assert [d["label"] for d in found] == ["p", "d"]
    np.testing.assert_allclose([d["box"] for d in found], [box for _, _, box in EXPECTED], atol=0.01)
