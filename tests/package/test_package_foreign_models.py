"""``edgecnn package`` of models edgecnn did not write: an Ultralytics export (its metadata gives
the spec) and a plain model with ``edgecnn run``'s model flags. Either way the bundle holds a
copy with that spec embedded as edgecnn metadata, which the board reads as it reads any.

The models are the Ultralytics stand-ins of ``tests/ultralytics_exports.py`` (fixture
``ultralytics_models``): constant outputs, so the detections they must give are known.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import tinymodels
import ultralytics_exports as ux
import yaml
from typer.testing import CliRunner

import edgecnn.cli.package_cmd  # noqa: F401  registers the command before the app is used
from edgecnn.cli.app import app
from edgecnn.package.bundle import adjust_config, bundled_model, package_model
from edgecnn.package.install import verify_bundle
from edgecnn.package.manifest import read_bundle_manifest
from edgecnn.package.wheelhouse import Target
from edgecnn.postprocess import decode_yolo, filter_detections
from edgecnn.runtime.interpreter import TFLiteModel
from edgecnn.runtime.metadata import FROM_EDGECNN, carried_spec, parse_model_file, read_model_spec
from edgecnn.runtime.resolve import resolve_file_spec
from edgecnn.runtime.spec import ModelSpec
from edgecnn.runtime.ultralytics import read_ultralytics_metadata

runner = CliRunner()
pytestmark = [pytest.mark.tf, pytest.mark.slow]

PLAIN_FLAGS = ["--task", "detect", "--labels", "person,car,dog"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _invoke(*args: str) -> object:
    return runner.invoke(app, ["package", *args], catch_exceptions=False)


def _detections(
    path: Path, frame: np.ndarray, spec: ModelSpec | None = None
) -> list[tuple[int, float, list[float]]]:
    """What the model at ``path`` finds in ``frame`` with ``spec`` (default: the one it carries):
    (class, score, box) each."""
    model = TFLiteModel(path, spec=spec)
    spec = model.spec
    assert spec is not None
    outputs, box_map = model.run_frame(frame)
    boxes, scores = decode_yolo(
        outputs, spec.output, spec.input.width, spec.input.height, spec.num_classes, min_objectness=0.0
    )
    found = filter_detections(
        boxes, scores, conf=spec.thresholds.conf, iou=spec.thresholds.iou, max_det=spec.thresholds.max_det
    ).to_source(box_map)
    return list(zip(found.class_ids.tolist(), found.scores.tolist(), found.boxes.tolist(), strict=True))


def _check_bundle(
    archive: Path, original: Path, want: ModelSpec, unpack: Callable[[Path], Path]
) -> tuple[Path, dict]:
    """The bundle verifies, its manifest pins the bundled copy (not the original), the copy carries
    ``want`` as edgecnn metadata and finds what the original finds. Returns (root, manifest)."""
    root = unpack(archive)
    manifest = verify_bundle(root)  # every file against its sha256, the manifest against its digest
    assert manifest == read_bundle_manifest(archive)
    copy = root / "model.tflite"
    data = copy.read_bytes()
    assert manifest["model"]["sha256"] == _sha(data) != _sha(original.read_bytes())
    assert manifest["model"]["size"] == len(data)
    spec, origin = carried_spec(data, parse_model_file(data, "copy"), "copy")
    assert origin == FROM_EDGECNN and spec == want
    assert ModelSpec.model_validate(manifest["model"]["spec"]) == want
    frame = np.full((ux.IMGSZ, ux.IMGSZ, 3), 90, np.uint8)  # the model's size: frame pixels = input pixels
    found = _detections(copy, frame)
    assert found == _detections(original, frame, want)  # (a plain original carries no spec)
    labels = [want.labels[cls] for cls, _, _ in found]
    assert labels == [label for label, *_ in ux.EXPECTED_DETECTIONS]
    np.testing.assert_allclose([box for *_, box in found], [d[2:] for d in ux.EXPECTED_DETECTIONS], atol=0.01)
    return root, manifest


@pytest.mark.parametrize(("name", "member"), [("v8", "metadata.json"), ("v8_pixels", "temp_meta.txt")])
def test_ultralytics_export_is_bundled_with_its_spec_embedded(
    ultralytics_models: dict[str, Path],
    device_config: Path,
    tmp_path: Path,
    unpack: Callable[[Path], Path],
    name: str,
    member: str,
) -> None:
    original = ultralytics_models[name]
    derived = read_model_spec(original)  # what edgecnn run reads from the Ultralytics metadata
    assert derived is not None and derived.name == name
    out = tmp_path / "dist"
    result = _invoke(str(original), "--target", "x86_64", "--config", str(device_config), "--out", str(out))
    assert result.exit_code == 0, result.output
    logged = f"spec: Ultralytics metadata ({member}), embedded in the bundled copy of {original}"
    assert logged in result.stderr
    (archive,) = out.iterdir()
    assert archive.name.startswith(f"{name}-")  # the bundle is named after the export
    root, _ = _check_bundle(archive, original, derived, unpack)
    # The appended Ultralytics archive is still there and still reads (edgecnn metadata wins).
    found = read_ultralytics_metadata((root / "model.tflite").read_bytes(), "copy")
    assert found is not None and found == read_ultralytics_metadata(original.read_bytes(), "original")
    assert found[1] == member


def test_the_board_runs_the_bundled_export_with_the_shipped_config(
    ultralytics_models: dict[str, Path], device_config: Path, tmp_path: Path, unpack: Callable[[Path], Path]
) -> None:
    """``edgecnn run --config`` with the bundle's own config, pointed at the unpacked model (as
    the installer points it at /opt/edgecnn/current/model.tflite) and a local source and sink."""
    original = ultralytics_models["v8_int8"]
    result = package_model(original, Target("x86_64"), out=tmp_path / "dist", config=device_config)
    root = unpack(result.path)
    shipped = (root / "config/device.yaml").read_text()
    config = yaml.safe_load(adjust_config(shipped, str(root / "model.tflite")))
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "frame.png"), np.full((ux.IMGSZ, ux.IMGSZ, 3), 90, np.uint8))
    config["source"] = {"type": "opencv", "input": str(frames)}
    config["sinks"] = [{"type": "jsonl", "path": str(tmp_path / "out.jsonl")}]
    (tmp_path / "device.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", "run", "--config", str(tmp_path / "device.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert record["model"] == "v8_int8"  # the export's name travels in the copy, not "model"
    assert [d["label"] for d in record["detections"]] == [d[0] for d in ux.EXPECTED_DETECTIONS]
    boxes = [d["box"] for d in record["detections"]]
    np.testing.assert_allclose(boxes, [d[2:] for d in ux.EXPECTED_DETECTIONS], atol=0.3)  # int8 steps


def test_plain_model_is_bundled_with_the_flags_embedded(
    ultralytics_models: dict[str, Path], device_config: Path, tmp_path: Path, unpack: Callable[[Path], Path]
) -> None:
    plain = ultralytics_models["plain"]  # v8's model without its metadata
    want = resolve_file_spec(plain, {"task": "detect", "labels": "person,car,dog"})  # what run uses
    assert want.output.layout == "yolo_v8"
    out = tmp_path / "dist"
    args = ["--target", "x86_64", "--config", str(device_config), "--out", str(out)]
    result = _invoke(str(plain), *args, *PLAIN_FLAGS)
    assert result.exit_code == 0, result.output
    assert "spec: flags, embedded in the bundled copy" in result.stderr
    (archive,) = out.iterdir()
    assert archive.name.startswith("plain-")
    _check_bundle(archive, plain, want, unpack)


def test_plain_model_without_flags_is_one_line_and_nothing_is_written(
    ultralytics_models: dict[str, Path], tmp_path: Path
) -> None:
    plain = ultralytics_models["plain"]
    out = tmp_path / "dist"
    for flags, missing in (([], "--task and --labels"), (["--task", "detect"], "--labels")):
        result = _invoke(str(plain), "--target", "x86_64", "--out", str(out), *flags)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            f"edgecnn: error: {plain} has no edgecnn or Ultralytics metadata: pass {missing} (edgecnn "
            "run's model flags) to embed them in the bundled copy; Ultralytics exports and edgecnn "
            "quantize outputs carry their own"
        ]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_errors_about_the_bundled_copy_name_the_users_file(
    ultralytics_models: dict[str, Path], tmp_path: Path
) -> None:
    """The device config is checked against the bundled copy (in a temporary folder): a message
    about it names the model the user gave."""
    export = ultralytics_models["v8"]
    config = tmp_path / "device.yaml"
    config.write_text(tinymodels.DEVICE_CONFIG.replace("num_threads: 2", "labels: [a, b]"))
    result = _invoke(str(export), "--target", "x86_64", "--config", str(config), "--out", str(tmp_path / "d"))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert f"{export} (its bundled copy): output tensors (1,7,84) do not match" in line, line
    assert "edgecnn-package-" not in line and not (tmp_path / "d").exists()


def test_bundled_model_keeps_an_edgecnn_model_as_it_is(
    ultralytics_models: dict[str, Path], tmp_path: Path
) -> None:
    """Only a model with edgecnn metadata and no flags is bundled unchanged; flags given for it are
    embedded over its spec, as edgecnn run applies them."""
    first = bundled_model(ultralytics_models["e2e"])
    assert first.data is not None and first.origin == "Ultralytics metadata (metadata.json)"
    assert first.spec.output.layout == "yolo_end2end"
    copy = tmp_path / "e2e.tflite"
    copy.write_bytes(first.data)
    assert bundled_model(copy).data is None and bundled_model(copy).spec == first.spec
    relabelled = bundled_model(copy, {"labels": "a,b,c", "iou": None})
    assert relabelled.origin == "edgecnn metadata with --labels" and relabelled.spec.labels == ["a", "b", "c"]
    assert relabelled.data is not None
