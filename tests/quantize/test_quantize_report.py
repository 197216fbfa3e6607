"""The pieces of the float-vs-int8 report: box agreement, output error, metric drops, the gate,
and that the conversion helpers see float ops and per-channel weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgecnn.errors import EdgecnnError, ModelError
from edgecnn.postprocess.filter import Detections
from edgecnn.quantize.chart import CHART_FILE, MAX_ROWS, Row, chart_rows, plot_per_class
from edgecnn.quantize.report import (
    QualityGateError,
    _ErrorStats,
    check_gate,
    match_detections,
    metric_table,
    render_markdown,
    summary_lines,
    write_report,
)


def _dets(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(scores, np.float32),
        np.asarray(classes, np.int64),
    )


def test_box_agreement_needs_same_class_and_iou_and_is_one_to_one() -> None:
    reference = _dets(
        [[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]],
        [0.9, 0.8, 0.7, 0.6],
        [0, 0, 1, 2],
    )
    other = _dets(
        [[1, 0, 11, 10], [20, 20, 30, 30], [40, 40, 45, 50]],  # IoU 9/11, 1.0, exactly 0.5
        [0.5, 0.5, 0.5],
        [0, 2, 2],
    )
    # Box 0 takes the only class-0 partner, box 1 finds none; box 2 has the right box but the
    # wrong class; box 3's class-2 partner overlaps it with IoU exactly 0.5 (counts).
    assert match_detections(reference, other) == 2
    assert match_detections(reference, other, iou=0.51) == 1
    assert match_detections(reference, Detections.empty()) == 0
    assert match_detections(Detections.empty(), other) == 0


def test_better_scored_reference_detection_matches_first() -> None:
    reference = _dets([[0, 0, 10, 10], [2, 0, 12, 10]], [0.3, 0.9], [0, 0])
    other = _dets([[2, 0, 12, 10]], [0.5], [0])
    assert match_detections(reference, other) == 1  # the 0.9 box takes it (IoU 1.0)


def test_output_error_statistics() -> None:
    stats = _ErrorStats("logits")
    ref = np.ones((2, 50), np.float32)
    stats.add(ref[:1], ref[:1] + 0.1)
    stats.add(ref[1:], ref[1:] - 0.1)
    out = stats.to_dict()
    assert out["mean_abs_error"] == pytest.approx(0.1)
    assert out["max_abs_error"] == pytest.approx(0.1, rel=1e-6)
    assert out["snr_db"] == pytest.approx(20.0, abs=1e-4)  # error a tenth of the signal
    assert (out["float_min"], out["float_max"]) == (1.0, 1.0)
    exact = _ErrorStats("same")
    exact.add(ref, ref)
    assert exact.to_dict()["snr_db"] is None and exact.to_dict()["max_abs_error"] == 0.0


def test_metric_table_in_points() -> None:
    float_m = {"map50": 0.80, "map50_95": 0.5, "per_class": {"a": {"ap50": 0.9, "ap50_95": None}}}
    quant_m = {"map50": 0.785, "map50_95": 0.49, "per_class": {"a": {"ap50": 0.88, "ap50_95": 0.4}}}
    table = metric_table("detect", float_m, quant_m)
    assert table["overall"]["map50"] == pytest.approx({"float": 80.0, "quantized": 78.5, "drop": 1.5})
    assert table["per_class"]["a"]["ap50"]["drop"] == pytest.approx(2.0)
    assert table["per_class"]["a"]["ap50_95"] == {"float": None, "quantized": 40.0, "drop": None}
    cls = metric_table("classify", {"accuracy": 0.9, "precision": 0.8, "recall": 0.7}, {"accuracy": 0.91})
    assert cls["overall"]["accuracy"]["drop"] == pytest.approx(-1.0)
    assert cls["overall"]["precision"]["drop"] is None


def _report(drop: float | None) -> dict[str, Any]:
    return {"primary_metric": "map50", "primary_drop": drop, "report_dir": "models/x_report"}


def test_gate() -> None:
    report = _report(1.2)
    check_gate(report, 1.5)
    assert report["gate"] == {"metric": "map50", "max_drop": 1.5, "drop": 1.2, "passed": True}
    check_gate(report, None)
    assert report["gate"]["passed"] is True

    report = _report(1.6)
    with pytest.raises(QualityGateError) as info:
        check_gate(report, 1.5)
    assert info.value.exit_code == 1 and isinstance(info.value, EdgecnnError)
    assert str(info.value) == (
        "quality gate failed: map50 dropped by 1.60 points from the float to the quantised model "
        "(--max-drop 1.5); see models/x_report"
    )
    assert report["gate"]["passed"] is False
    with pytest.raises(QualityGateError, match="an undefined amount"):
        check_gate(_report(None), 1.5)  # nothing to measure on is not a pass


def test_markdown_names_every_section() -> None:
    report = {
        "model": "m",
        "float_model": "f.tflite",
        "quantized_model": "q.tflite",
        "quantized_input": "int8",
        "mode": "int8",
        "data": "d.yaml",
        "split": "val",
        "images": 3,
        "metrics": metric_table("classify", {"accuracy": 1.0}, {"accuracy": 2 / 3}),
        "agreement": {"kind": "top1", "value": 2 / 3, "images": 3, "same_top1": 2},
        "output_error": [_ErrorStats("logits").to_dict()],
        "size": {"float_bytes": 100, "quantized_bytes": 30, "ratio": 0.3},
        "gate": {"metric": "accuracy", "max_drop": 1.0, "drop": 33.3, "passed": False},
    }
    md = render_markdown(report)
    assert "| accuracy | 100.00 | 66.67 | 33.33 |" in md
    assert "Same top-1 class on 2 of 3 images: **66.67 %**." in md
    assert "ratio **0.300**" in md and "FAILED" in md
    assert "| logits | n/a | 0.0000 | n/a | n/a .. n/a |" in md


@pytest.mark.tf
@pytest.mark.slow
def test_float_ops_and_per_channel_weights(
    make_run: Callable[..., Path], digits_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecnn.quantize import convert
    from edgecnn.quantize.calibration import build_calibration_set, representative_dataset
    from edgecnn.quantize.convert import (
        convert_keras,
        float_ops,
        load_keras_model,
        load_run_spec,
        per_channel_ops,
        traced,
    )

    path = make_run("lenet_test", digits_data, 3)
    model, spec = load_keras_model(path), load_run_spec(path)
    calib = build_calibration_set(digits_data, tmp_path / "calib", n=50).calibration
    with traced(model) as saved:
        float_blob = convert_keras(saved, "float", "float")
        dynamic_blob = convert_keras(saved, "dynamic", "float")
        rep = representative_dataset(calib, spec.input)
        int8_float_io = convert_keras(saved, "int8", "float", rep)
        int8_blob = convert_keras(saved, "int8", "int8", rep)
        uint8_blob = convert_keras(saved, "int8", "uint8", rep)
    assert any(op.startswith("CONV_2D ") for op in float_ops(float_blob))
    assert float_ops(dynamic_blob)  # int8 weights, float activations: not an int8 model
    assert float_ops(int8_float_io) == []  # float only at the graph's input and output
    assert float_ops(int8_blob) == []
    assert float_ops(uint8_blob) == []  # uint8 interface, int8 inside
    assert _io_dtypes(uint8_blob) == ["uint8", "uint8"] and _io_dtypes(int8_blob) == ["int8", "int8"]
    assert _io_dtypes(int8_float_io) == ["float32", "float32"]
    # Per-channel weights: both convolutions and both dense layers of LeNet.
    assert per_channel_ops(int8_blob) == 4
    assert per_channel_ops(float_blob) == 0
    # The once-exported SavedModel converts to what from_keras_model gives: same ops, same numbers.
    direct = convert_keras(model, "int8", "int8", rep)
    assert len(direct) == len(int8_blob)
    x = next(iter(rep()))[0]
    assert _run_int8(direct, x) == _run_int8(int8_blob, x)

    # Should a conversion ever leave float ops in an int8 model, quantize refuses it by name and
    # writes nothing (the converter is swapped for one returning the real float model).
    monkeypatch.setattr(convert, "convert_keras", lambda *args, **kwargs: float_blob)
    # Every op but the int32 shape arithmetic (STRIDED_SLICE, PACK), named by its output tensor.
    with pytest.raises(ModelError, match=r"still computes in float in 8 op\(s\): CONV_2D \(\S*block1_conv"):
        convert.quantize_model(path, tmp_path / "m.tflite", calib, model=model, spec=spec)
    assert not (tmp_path / "m.tflite").exists()


def _io_dtypes(blob: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob)
    details = [*interpreter.get_input_details(), *interpreter.get_output_details()]
    return [np.dtype(d["dtype"]).name for d in details]


def _run_int8(blob: bytes, x: np.ndarray) -> tuple[list[str], list[list[int]]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    scale, zero = inp["quantization"]
    interpreter.set_tensor(inp["index"], np.clip(np.rint(x / scale) + zero, -128, 127).astype(np.int8))
    interpreter.invoke()
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    return ops, [
        interpreter.get_tensor(o["index"]).ravel().tolist() for o in interpreter.get_output_details()
    ]


def _detect_report(drops: dict[str, float | None], max_drop: float | None = None) -> dict[str, Any]:
    """A detector's report whose classes lose ``drops`` points of AP50 (None: not measured)."""
    per_class = {
        name: {"ap50": 0.9 if drop is not None else None, "ap50_95": 0.5} for name, drop in drops.items()
    }
    quant = {
        name: {"ap50": 0.9 - drop / 100 if drop is not None else None, "ap50_95": 0.5}
        for name, drop in drops.items()
    }
    report: dict[str, Any] = {
        "task": "detect",
        "model": "tiny",
        "split": "val",
        "primary_metric": "map50",
        "metrics": metric_table(
            "detect", {"map50": 0.9, "per_class": per_class}, {"map50": 0.88, "per_class": quant}
        ),
    }
    if max_drop is not None:
        report["gate"] = {"metric": "map50", "max_drop": max_drop, "drop": 2.0, "passed": False}
    return report


def test_chart_rows_put_all_classes_first_then_the_largest_drop() -> None:
    rows, left_out = chart_rows(
        _detect_report({"cat": 0.5, "dog": 6.0, "bird": None, "cow": -1.0, "ant": 0.5})
    )
    assert [r.label for r in rows] == ["all classes (mAP50)", "dog", "cat", "ant", "cow", "bird"]
    assert rows[1] == Row("dog", 90.0, pytest.approx(84.0), pytest.approx(6.0)) and left_out == 0
    many = {f"c{i}": float(i) for i in range(MAX_ROWS + 5)}
    rows, left_out = chart_rows(_detect_report(many))
    assert len(rows) == MAX_ROWS + 1 and left_out == 5 and rows[1].label == f"c{MAX_ROWS + 4}"


def _red_pixels(path: Path) -> int:
    image = cv2.imread(str(path))  # BGR
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return int(((r > 180) & (g < 90) & (b < 90)).sum())


def test_chart_draws_a_drop_over_the_gate_in_red_and_report_md_shows_it(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    calm = plot_per_class(_detect_report({"cat": 0.5, "dog": 1.0}, max_drop=3.0), tmp_path / "calm.png")
    hurt = plot_per_class(_detect_report({"cat": 0.5, "dog": 6.0}, max_drop=3.0), tmp_path / "hurt.png")
    for path in (calm, hurt):
        image = cv2.imread(str(path))
        assert image is not None and image.shape[1] == 800  # 8 inches at 100 dpi
    assert _red_pixels(calm) == 0 and _red_pixels(hurt) > 10
    report = {
        **_detect_report({"cat": 0.5}),
        "float_model": "f.tflite",
        "quantized_model": "q.tflite",
        "quantized_input": "int8",
        "data": "d.yaml",
        "images": 3,
        "agreement": {"kind": "top1", "value": 1.0, "images": 3, "same_top1": 3},
        "output_error": [],
        "size": {"float_bytes": 100, "quantized_bytes": 30, "ratio": 0.3},
    }
    write_report(report, tmp_path / "report")
    assert (tmp_path / "report" / CHART_FILE).is_file()
    assert f"]({CHART_FILE})" in (tmp_path / "report" / "report.md").read_text()


def test_the_terminal_summary_names_metrics_as_eval_does() -> None:
    report = {
        "metrics": metric_table(
            "detect", {"map50": 0.8887, "map50_95": 0.6367}, {"map50": 0.8889, "map50_95": 0.6017}
        ),
        "agreement": {"kind": "boxes", "value": 0.99},
        "size": {"ratio": 0.3},
    }
    first, second = summary_lines(report)
    assert first == "mAP50 88.87 -> 88.89 (drop -0.02), mAP50-95 63.67 -> 60.17 (drop 3.50)"
    assert second == "box agreement 99.00 %, size ratio 0.300"
