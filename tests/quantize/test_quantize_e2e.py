"""``edgecnn calib build`` + ``edgecnn quantize --data --max-drop`` end to end on every zoo family.

Parametrised over the registry's tiny ``*_test`` variants, so a new family is covered without
editing this file. Each: a calibration set from the train split, full-integer int8
conversion, the float-vs-int8 report on the val split and the gate. LeNet is trained on real
handwritten digits and held to int8 quality; the others are untrained with batch norm
settled on their training images (their metrics do not matter; the plumbing does), with a
calibration set of a few images (``--force``) and a gate that passes whenever the drop can be
measured (settings: ``quant_case`` in conftest.py). The gate failing (exit 1, model and report
still written): a detector here (no ground truth, so no drop to measure), the trained LeNet
with a bad calibration set (a measured drop) in test_quantize_errors.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecnn.architectures import list_models
from edgecnn.data import load_split, write_data_yaml
from edgecnn.data.coco import write_coco
from edgecnn.quantize.convert import float_ops
from edgecnn.runtime.interpreter import TFLiteModel
from edgecnn.runtime.metadata import read_spec
from edgecnn.runtime.spec import ModelSpec
from edgecnn.runtime.validate import validate_model

#: Every registered tiny variant: at least one per family (``test_every_family_is_quantized``).
TEST_MODELS = [info for info in list_models(include_test=True) if info.test]
VARIANTS = [info.name for info in TEST_MODELS]
DETECTORS = [info.name for info in TEST_MODELS if info.task == "detect"]


def test_every_family_is_quantized() -> None:
    """Each family of the zoo has a tiny variant, and so an end-to-end quantisation below."""
    assert {info.family for info in list_models()} <= {info.family for info in TEST_MODELS}
    assert {"classify", "detect"} <= {info.task for info in TEST_MODELS}


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.parametrize("variant", VARIANTS)
def test_quantize_end_to_end(variant: str, quantized: Callable[[str], dict[str, Any]]) -> None:
    q = quantized(variant)
    assert q["result"].exit_code == 0, q["result"].output
    path: Path = q["tflite"]
    spec_json = ModelSpec.load(q["model"].with_name("spec.json"))
    classes = len(spec_json.labels)
    assert f"{classes} of {classes} classes covered" in q["calib_result"].stdout

    # The .tflite alone is enough: the spec of the run, embedded; it loads in a child process.
    assert read_spec(path) == spec_json
    info = validate_model(path, expect_spec=True)
    assert info.input_dtype == "int8" and set(info.output_dtypes) == {"int8"}
    blob = path.read_bytes()
    assert float_ops(blob) == []
    assert "DEQUANTIZE" not in info.ops and "QUANTIZE" not in info.ops

    # It runs from a camera frame with its own spec.
    model = TFLiteModel(path)
    outputs, _ = model.run_frame(np.full((48, 64, 3), 90, np.uint8))
    assert [o.shape for o in outputs] == list(model.output_shapes)

    report = q["report"]
    report_dir = q["work"] / "report"
    assert (report_dir / "report.md").is_file() and (report_dir / "float.tflite").is_file()
    assert read_spec(report_dir / "float.tflite") == spec_json
    val = load_split(q["data"], "val")
    assert report["images"] == len(val) and report["split"] == "val" and report["mode"] == "int8"
    assert report["calibration"]["images"] == q["case"].calib_images
    size = report["size"]
    assert size["quantized_bytes"] == path.stat().st_size
    assert size["float_bytes"] == (report_dir / "float.tflite").stat().st_size
    assert size["ratio"] == pytest.approx(size["quantized_bytes"] / size["float_bytes"])
    # int8 stores a weight in a byte instead of four. Below ~100 kB the file is mostly graph and
    # per-channel quantisation parameters, which do not shrink (mini_resnet_test: 34 kB of float
    # weights become 9 kB, the file only 0.65x).
    assert size["ratio"] < (0.5 if size["float_bytes"] > 100_000 else 0.75)

    task = spec_json.task
    overall = report["metrics"]["overall"]
    keys = {"map50", "map50_95"} if task == "detect" else {"accuracy", "precision", "recall"}
    assert set(overall) == keys
    for entry in overall.values():
        assert entry["drop"] == pytest.approx(entry["float"] - entry["quantized"])
    assert set(report["metrics"]["per_class"]) == set(spec_json.labels)
    assert report["primary_metric"] == ("map50" if task == "detect" else "accuracy")

    agreement = report["agreement"]
    assert agreement["kind"] == ("box" if task == "detect" else "top1")
    if task == "classify":
        assert agreement["images"] == len(val) and 0.0 <= agreement["value"] <= 1.0
    errors = report["output_error"]
    assert len(errors) == len(outputs)
    for e in errors:
        assert 0.0 <= e["mean_abs_error"] <= e["max_abs_error"]
        assert e["float_min"] <= e["float_max"]
    assert (
        report["latency"]["float"]["invoke_p50_ms"] > 0
        and report["latency"]["quantized"]["invoke_p50_ms"] > 0
    )

    worst = report["worst_layers"]
    assert len(worst) == 5
    scores = [w["rmse_over_scale"] for w in worst]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert all(w["op"].isupper() and w["tensor"] for w in worst)
    md = (report_dir / "report.md").read_text()
    for heading in (
        "## Metrics",
        "## Agreement",
        "## Output error",
        "## Size",
        "## Latency",
        "## Worst layers",
    ):
        assert heading in md
    assert worst[0]["tensor"] in md

    # The gate: measured, passed, recorded in both files.
    assert report["primary_drop"] == overall[report["primary_metric"]]["drop"]
    max_drop = q["case"].max_drop
    assert report["gate"] == {
        "metric": report["primary_metric"],
        "max_drop": max_drop,
        "drop": report["primary_drop"],
        "passed": True,
    }
    assert f"- gate: {report['primary_metric']} drop " in md and f"<= {max_drop:g} points: passed" in md


@pytest.mark.slow
@pytest.mark.tf
def test_trained_classifier_survives_int8(quantized: Callable[[str], dict[str, Any]]) -> None:
    """LeNet trained on real digits: int8 agrees with float and keeps its accuracy."""
    q = quantized("lenet_test")
    report = q["report"]
    accuracy = report["metrics"]["overall"]["accuracy"]
    assert accuracy["float"] > 80.0  # trained: the comparison means something
    assert accuracy["drop"] <= 3.0
    assert report["agreement"]["value"] >= 0.95
    errors = report["output_error"][0]
    assert errors["snr_db"] > 15.0
    assert report["gate"] == {"metric": "accuracy", "max_drop": 3.0, "drop": accuracy["drop"], "passed": True}
    assert "accuracy" in q["result"].stdout and "top-1 agreement" in q["result"].stdout


@pytest.mark.slow
@pytest.mark.tf
def test_detector_gate_fails_without_ground_truth(
    quantized: Callable[[str], dict[str, Any]], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    """Val images without a single box: no mAP50 to compare, so even the loosest gate fails
    (exit 1), after the model and the report were written."""
    q = quantized(DETECTORS[0])
    val = load_split(q["data"], "val")
    empty = [
        replace(r, boxes=np.zeros((0, 4)), class_ids=[], iscrowd=None, difficult=None) for r in val.records
    ]
    coco = write_coco(empty, val.names, tmp_path / "unlabelled", "val", category_ids=val.category_ids)
    data = write_data_yaml(tmp_path / "unlabelled" / "data.yaml", val.names, {"val": coco}, task="detect")
    out, report_dir = tmp_path / "model_int8.tflite", tmp_path / "report"
    result = run_cli(
        "quantize", q["model"], "--calib", q["work"] / "calib", "--out", out,
        "--data", data, "--max-drop", "100", "--report", report_dir,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("edgecnn: error: quality gate failed: map50 dropped by an undefined amount")
    assert "(--max-drop 100)" in lines[0]
    # The model and the report stay, to look at.
    assert read_spec(out) == read_spec(q["tflite"])
    report = json.loads((report_dir / "report.json").read_text())
    assert report["images"] == len(val)
    assert report["metrics"]["overall"]["map50"] == {"float": None, "quantized": None, "drop": None}
    assert report["gate"] == {"metric": "map50", "max_drop": 100.0, "drop": None, "passed": False}
    assert len(report["worst_layers"]) == 5
    assert "FAILED" in (report_dir / "report.md").read_text()
