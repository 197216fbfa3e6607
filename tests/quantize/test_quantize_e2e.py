"""``edgecnn calib build`` + ``edgecnn quantize --data`` end to end on tiny zoo variants.

One classifier trained on real handwritten digits (LeNet), one detector (tiny YOLOv3) and one
MobileNet, each: calibration set from the train split, full-integer int8 conversion, the
float-vs-int8 report on the val split and the gate. The untrained variants have batch norm
settled on their training images (their metrics do not matter; the plumbing does).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecnn.data import load_split
from edgecnn.quantize.convert import float_ops
from edgecnn.runtime.interpreter import TFLiteModel
from edgecnn.runtime.metadata import read_spec
from edgecnn.runtime.spec import ModelSpec
from edgecnn.runtime.validate import validate_model

pytestmark = [pytest.mark.slow, pytest.mark.tf]

#: One classifier, one detector, one MobileNet (their settings: ``CASES`` in conftest.py).
VARIANTS = ["lenet_test", "tiny_yolo_v3_test", "mobilenet_v1_test"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_quantize_end_to_end(variant: str, quantized: Callable[[str], dict[str, Any]]) -> None:
    q = quantized(variant)
    assert q["result"].exit_code == 0, q["result"].output
    path: Path = q["tflite"]
    spec_json = ModelSpec.load(q["model"].with_name("spec.json"))

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
    assert report["calibration"]["images"] == 60
    size = report["size"]
    assert size["quantized_bytes"] == path.stat().st_size
    assert size["float_bytes"] == (report_dir / "float.tflite").stat().st_size
    assert size["ratio"] == pytest.approx(size["quantized_bytes"] / size["float_bytes"])
    assert size["ratio"] < 0.5

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
