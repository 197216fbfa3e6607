"""``edgecnn quantize`` refuses bad input with one line and exit 2, and its gate exits 1.

The fast cases fail before TensorFlow is imported (options, spec.json, the calibration
manifest are checked first); the unreadable model and the gate need Keras.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgecnn.architectures import get_model_info
from edgecnn.data import write_data_yaml
from edgecnn.quantize.calibration import build_calibration_set


def _one_error_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edgecnn: error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A run folder whose model.keras is garbage but whose spec.json is valid."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"this is not a keras archive")
    get_model_info("lenet_test").model_spec([str(d) for d in range(10)]).save(folder / "spec.json")
    return folder / "model.keras"


@pytest.fixture(scope="module")
def calib_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 50-image calibration set (digit-like grey blobs)."""
    root = tmp_path_factory.mktemp("calib_src")
    for k in range(50):
        image = np.zeros((28, 28), np.uint8)
        cv2.circle(image, (14, 14), 4 + k % 8, 255, -1)
        folder = root / "train" / "blob"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{k:02d}.png"), image)
    data = write_data_yaml(root / "data.yaml", ["blob"], {"train": "train"})
    return build_calibration_set(data, root.parent / f"{root.name}_calib", n=50).calibration.root


def test_missing_model_file(tmp_path: Path, run_cli: Callable[..., Any], calib_set: Path) -> None:
    result = run_cli(
        "quantize", tmp_path / "none.keras", "--calib", calib_set, "--out", tmp_path / "m.tflite"
    )
    assert result.exit_code == 2
    assert "none.keras: no such file" in _one_error_line(result)


def test_missing_spec_json(
    fake_run: Path, run_cli: Callable[..., Any], calib_set: Path, tmp_path: Path
) -> None:
    fake_run.with_name("spec.json").unlink()
    result = run_cli("quantize", fake_run, "--calib", calib_set, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "model.keras: no spec.json next to it" in line
    assert not (tmp_path / "m.tflite").exists()


def test_invalid_spec_json(
    fake_run: Path, run_cli: Callable[..., Any], calib_set: Path, tmp_path: Path
) -> None:
    spec = fake_run.with_name("spec.json")
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "task": "segment"}))
    result = run_cli("quantize", fake_run, "--calib", calib_set, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2
    assert (
        "spec.json: not a valid model spec: task: Input should be 'detect' or 'classify'"
        in _one_error_line(result)
    )


def test_tampered_calibration_image(
    fake_run: Path, run_cli: Callable[..., Any], calib_set: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / "calib"
    shutil.copytree(calib_set, tampered)
    victim = sorted((tampered / "images").iterdir())[3]
    image = cv2.imread(str(victim), cv2.IMREAD_GRAYSCALE)
    image[0, 0] ^= 1
    cv2.imwrite(str(victim), image)
    result = run_cli("quantize", fake_run, "--calib", tampered, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert f"images/{victim.name}: sha256 differs from manifest.txt" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "int8"], "--mode int8 needs --calib"),
        (["--mode", "fp16", "--io", "uint8"], "--io uint8 needs --mode int8"),
        (["--mode", "dynamic", "--max-drop", "1"], "--max-drop needs --data"),
        (["--mode", "float", "--report", "somewhere"], "--report needs --data"),
        (["--mode", "float", "--calib", "calibration/x"], "--calib is for --mode int8 only"),
    ],
)
def test_bad_option_combinations(
    fake_run: Path, run_cli: Callable[..., Any], tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli("quantize", fake_run, "--out", tmp_path / "m.tflite", *args)
    assert result.exit_code == 2
    assert message in _one_error_line(result)


@pytest.mark.parametrize("name", ["report.json", "report.md", "float.tflite"])
def test_report_folder_that_cannot_take_the_report_is_refused_first(
    fake_run: Path, run_cli: Callable[..., Any], tmp_path: Path, name: str
) -> None:
    # A folder where a report file goes would fail only after the conversion and the
    # measurements; it is refused before the model is even read.
    report = tmp_path / "report"
    (report / name).mkdir(parents=True)
    data = tmp_path / "data.yaml"
    data.write_text("val: images\nnames: [a]\n")
    args = ["--mode", "float", "--data", data, "--report", report, "--out", tmp_path / "m.tflite"]
    result = run_cli("quantize", fake_run, *args)
    assert result.exit_code == 2
    assert f"--report {report / name}: is a directory, expected a file path" in _one_error_line(result)


def test_bad_calibration_folder(fake_run: Path, run_cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("quantize", fake_run, "--calib", tmp_path / "empty", "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2
    assert "no manifest.txt; not a calibration set" in _one_error_line(result)


@pytest.mark.tf
@pytest.mark.slow
def test_unreadable_model(
    fake_run: Path, run_cli: Callable[..., Any], calib_set: Path, tmp_path: Path
) -> None:
    # The blob set is not the digits the spec names: let it through to reach the model.
    args = ["--calib", calib_set, "--out", tmp_path / "m.tflite", "--allow-calib-mismatch"]
    result = run_cli("quantize", fake_run, *args)
    assert result.exit_code == 2
    assert "model.keras: not a Keras model file (a .keras file is a zip archive" in _one_error_line(result)
    with zipfile.ZipFile(fake_run, "w") as archive:  # a zip, but not a Keras model
        archive.writestr("hello.txt", "hi")
    result = run_cli("quantize", fake_run, *args)
    assert result.exit_code == 2
    assert "model.keras: cannot load the Keras model" in _one_error_line(result)
    assert not (tmp_path / "m.tflite").exists()
    result = run_cli("quantize", fake_run, "--calib", fake_run, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2 and "is a file; expected a calibration folder" in _one_error_line(result)


@pytest.mark.tf
@pytest.mark.slow
def test_max_drop_gate_fails_with_exit_1(
    make_run: Callable[..., Path],
    digits_data: Path,
    run_cli: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """A deliberately bad calibration set (faint blobs, nothing like the digits' ink): the
    int8 ranges are far too narrow, accuracy collapses and the gate stops the release."""
    root = tmp_path / "faint"
    for k in range(50):
        image = np.zeros((28, 28), np.uint8)
        cv2.circle(image, (14, 14), 3 + k % 5, 6, -1)
        (root / "train" / "blob").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "train" / "blob" / f"{k:02d}.png"), image)
    data = write_data_yaml(root / "data.yaml", ["blob"], {"train": "train"})
    assert (
        run_cli("calib", "build", "--data", data, "--out", tmp_path / "bad_calib", "--n", 50).exit_code == 0
    )

    model = make_run("lenet_test", digits_data, 3)
    out = tmp_path / "lenet_int8.tflite"
    args = ["--data", digits_data, "--max-drop", "1.5", "--report", tmp_path / "report"]
    result = run_cli("quantize", model, "--calib", tmp_path / "bad_calib", "--out", out, *args)
    assert result.exit_code == 2  # a set of other classes than the model's is refused ...
    line = _one_error_line(result)
    assert f"{tmp_path / 'bad_calib'}: built from {data} with 1 classify class (blob), but {model} " in line
    assert "has 10 classify classes (0, 1, 2, 3, 4, 5, ...)" in line and "--allow-calib-mismatch" in line
    result = run_cli(  # ... unless asked for: here, deliberately
        "quantize", model, "--calib", tmp_path / "bad_calib", "--out", out, *args, "--allow-calib-mismatch"
    )
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert line.startswith("edgecnn: error: quality gate failed: accuracy dropped by ")
    assert "(--max-drop 1.5)" in line
    # The model and the report stay, to look at.
    assert out.is_file()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["gate"]["passed"] is False and report["gate"]["drop"] > 1.5
    assert report["calibration"]["matches_model"] is False
    assert report["calibration"]["source"] == str(data.resolve())
    assert report["primary_drop"] == report["metrics"]["overall"]["accuracy"]["drop"]
    assert "FAILED" in (tmp_path / "report" / "report.md").read_text()


def test_data_the_model_does_not_fit_is_refused_before_converting(
    fake_run: Path, run_cli: Callable[..., Any], calib_set: Path, tmp_path: Path
) -> None:
    # The garbage model.keras proves the check comes first: reading it would fail differently.
    data = calib_set.parent / calib_set.name.removesuffix("_calib") / "data.yaml"  # 1 class, "blob"
    previous = tmp_path / "m.tflite"
    previous.write_bytes(b"the previous good model")
    args = ["--calib", calib_set, "--out", previous, "--data", data, "--split", "train"]
    result = run_cli("quantize", fake_run, *args)
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith(f"edgecnn: error: {data}: the model has 10 classes") and "has 1 (blob)" in line
    assert previous.read_bytes() == b"the previous good model"
    assert not (tmp_path / "m_report").exists()


def test_calibration_set_of_other_classes_is_refused_before_the_model_is_read(
    fake_run: Path, run_cli: Callable[..., Any], calib_set: Path, tmp_path: Path
) -> None:
    # A set built from another dataset (one class, "blob") for a 10-digit model: one line
    # naming both, exit 2; the garbage model.keras proves the check comes before reading it.
    result = run_cli("quantize", fake_run, "--calib", calib_set, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2
    line = _one_error_line(result)
    source = calib_set.parent / calib_set.name.removesuffix("_calib") / "data.yaml"
    assert line == (
        f"edgecnn: error: {calib_set}: built from {source.resolve()} with 1 classify class (blob), but "
        f"{fake_run} has 10 classify classes (0, 1, 2, 3, 4, 5, ...); build a set from the model's data "
        "(`edgecnn calib build`), or pass --allow-calib-mismatch to use it anyway"
    )
    assert not (tmp_path / "m.tflite").exists()
