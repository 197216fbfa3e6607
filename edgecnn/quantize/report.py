"""The float-vs-quantised report: what int8 costs in accuracy, and what it saves in size.

:func:`compare_models` runs a float ``.tflite`` (converted from the same Keras model) and the
quantised one over a validation split and measures:

* **metrics** of both through :func:`edgecnn.evaluation.evaluate_model` (mAP50 and
  mAP50-95 for detectors, accuracy / precision / recall for classifiers), overall and per
  class, and the drop in points (``100 x (float - quantised)``); the gate uses the drop of
  the primary metric (mAP50, or top-1 accuracy);
* **agreement** between the two on the same images: classifiers, the share of images with
  the same top-1 class; detectors, the share of float detections (at the spec's default
  thresholds) matched by a quantised detection of the same class with IoU >= 0.5 (greedy,
  best score first, one to one);
* **output error** of the dequantised raw outputs against the float ones, per output
  tensor: mean and max absolute error, and the signal-to-noise ratio
  ``10 log10(sum f^2 / sum (f - q)^2)`` in dB (20 dB: the error is a tenth of the signal);
* **size** of both files and their ratio, and **latency** of both on this machine
  (median, :func:`edgecnn.bench.bench_model`, one thread; x86 timings do not predict ARM);
* optionally the **worst layers** by RMSE / scale (:mod:`edgecnn.quantize.debugger`).

:func:`write_report` writes ``report.json``, ``report.md`` and ``per_class.png``; :func:`check_gate` is the
release gate of ``edgecnn quantize --max-drop``. Everything here except the worst layers
runs without TensorFlow.
"""

from __future__ import annotations

import importlib.util
import json
import math
import platform
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.bench import bench_model
from edgecnn.data import Split, load_split
from edgecnn.data.pipeline import iter_preprocessed
from edgecnn.errors import EdgecnnError, ModelError
from edgecnn.postprocess.boxes import box_iou
from edgecnn.postprocess.decode import decode_yolo
from edgecnn.postprocess.filter import Detections, filter_detections
from edgecnn.runtime.interpreter import TFLiteModel
from edgecnn.runtime.metadata import read_spec
from edgecnn.runtime.spec import ModelSpec

#: ``progress(description, total)`` -> a context manager yielding ``update(done)``; the
#: signature of :func:`edgecnn.cli._progress.progress_bar`.
ProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]

#: IoU at which a quantised detection counts as the same object as a float one.
AGREEMENT_IOU = 0.5
#: How the terminal and the chart name the report's metric keys (as ``edgecnn eval`` does).
METRIC_NAMES = {"map50": "mAP50", "map50_95": "mAP50-95"}
REPORT_JSON = "report.json"
REPORT_MD = "report.md"


@contextmanager
def no_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A :data:`ProgressFactory` that shows nothing."""
    yield lambda done: None


class QualityGateError(EdgecnnError):
    """The quantised model lost more than ``--max-drop`` points (exit code 1)."""

    exit_code = 1


@dataclass
class _ErrorStats:
    """Running error statistics of one output tensor."""

    name: str
    count: int = 0
    abs_sum: float = 0.0
    max_abs: float = 0.0
    err_sq: float = 0.0
    ref_sq: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        ref64 = np.asarray(ref, np.float64)
        diff = np.asarray(got, np.float64) - ref64
        self.count += diff.size
        self.abs_sum += float(np.abs(diff).sum())
        self.max_abs = max(self.max_abs, float(np.abs(diff).max(initial=0.0)))
        self.err_sq += float((diff * diff).sum())
        self.ref_sq += float((ref64 * ref64).sum())
        self.low = min(self.low, float(ref64.min(initial=math.inf)))
        self.high = max(self.high, float(ref64.max(initial=-math.inf)))

    def to_dict(self) -> dict[str, Any]:
        snr = None
        if self.err_sq > 0 and self.ref_sq > 0:
            snr = 10.0 * math.log10(self.ref_sq / self.err_sq)
        return {
            "output": self.name,
            "mean_abs_error": self.abs_sum / self.count if self.count else None,
            "max_abs_error": self.max_abs,
            "snr_db": snr,
            "float_min": self.low if self.count else None,
            "float_max": self.high if self.count else None,
        }


@dataclass
class _Agreement:
    """Running float-vs-quantised agreement counts."""

    task: str
    total: int = 0
    matched: int = 0
    quantized_total: int = 0
    per_image: list[float] = field(default_factory=list)

    def to_dict(self, conf: float | None) -> dict[str, Any]:
        value = self.matched / self.total if self.total else None
        if self.task == "classify":
            return {"kind": "top1", "value": value, "images": self.total, "same_top1": self.matched}
        return {
            "kind": "box",
            "value": value,
            "float_detections": self.total,
            "quantized_detections": self.quantized_total,
            "matched": self.matched,
            "iou": AGREEMENT_IOU,
            "conf": conf,
        }


def match_detections(reference: Detections, other: Detections, iou: float = AGREEMENT_IOU) -> int:
    """How many ``reference`` detections have a same-class partner in ``other`` with IoU >= ``iou``.

    Greedy and one to one: reference detections in descending score order each take the
    unmatched partner of highest IoU.
    """
    if len(reference) == 0 or len(other) == 0:
        return 0
    overlaps = box_iou(reference.boxes, other.boxes)
    overlaps[reference.class_ids[:, None] != other.class_ids[None, :]] = -1.0
    taken = np.zeros(len(other), bool)
    matched = 0
    for i in np.argsort(-reference.scores, kind="stable"):
        row = np.where(taken, -1.0, overlaps[i])
        j = int(row.argmax())
        if row[j] >= iou:
            taken[j] = True
            matched += 1
    return matched


def _detections(model: TFLiteModel, outputs: list[np.ndarray], spec: ModelSpec) -> Detections:
    th = spec.thresholds
    ordered = [outputs[i] for i in model.scale_order]
    boxes, scores = decode_yolo(
        ordered, spec.output, spec.input.width, spec.input.height, spec.num_classes, min_objectness=th.conf
    )
    return filter_detections(boxes, scores, conf=th.conf, iou=th.iou, max_det=th.max_det)


def _output_names(model: TFLiteModel, spec: ModelSpec) -> tuple[list[int], list[str]]:
    """Output indices in spec order (ascending stride for detectors) and their names."""
    if spec.task == "classify":
        return [0], ["logits" if spec.output.class_activation != "none" else "probabilities"]
    if not spec.output.strides:  # anchor-free: one output
        return model.scale_order, ["output"]
    return model.scale_order, [f"stride {s}" for s in spec.output.strides]


def compare_outputs(
    float_model: TFLiteModel,
    quant_model: TFLiteModel,
    split: Split,
    spec: ModelSpec,
    progress: ProgressFactory = no_progress,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run both models on every image of ``split``: agreement and per-output error statistics.

    Returns:
        ``(agreement, output_errors)`` as JSON-ready dicts (see the module docstring).
    """
    f_order, names = _output_names(float_model, spec)
    q_order, _ = _output_names(quant_model, spec)
    stats = [_ErrorStats(name) for name in names]
    agreement = _Agreement(spec.task)
    with progress("comparing float and quantised outputs", len(split)) as update:
        for k, (tensor, _record, _box_map) in enumerate(iter_preprocessed(split, spec.input), start=1):
            f_out = float_model.run(tensor)
            q_out = quant_model.run(tensor)
            for s, fi, qi in zip(stats, f_order, q_order, strict=True):
                s.add(f_out[fi], q_out[qi])
            if spec.task == "classify":
                agreement.total += 1
                agreement.matched += int(np.argmax(f_out[0]) == np.argmax(q_out[0]))
            else:
                f_det = _detections(float_model, f_out, spec)
                q_det = _detections(quant_model, q_out, spec)
                agreement.total += len(f_det)
                agreement.quantized_total += len(q_det)
                agreement.matched += match_detections(f_det, q_det)
            update(k)
    conf = spec.thresholds.conf if spec.task == "detect" else None
    return agreement.to_dict(conf), [s.to_dict() for s in stats]


def evaluate_tflite(
    path: Path, split: Split, spec: ModelSpec, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Metrics of a ``.tflite`` model on a split, through :func:`edgecnn.evaluation.evaluate_model`
    (its COCO-style defaults: conf 0.001, IoU 0.6, 100 detections per image).

    Raises:
        UserError: the split does not fit the model (task or number of classes).
    """
    from edgecnn.evaluation import TFLitePredictor, evaluate_model

    return evaluate_model(TFLitePredictor(path, spec=spec), split, spec, progress=progress)


def _points(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _drop(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else 100.0 * (a - b)


def metric_table(task: str, float_metrics: dict[str, Any], quant_metrics: dict[str, Any]) -> dict[str, Any]:
    """Overall and per-class metrics of both models, in points, with the drops.

    Detection: ``map50``, ``map50_95`` (per class ``ap50``, ``ap50_95``); classification:
    ``accuracy``, ``precision``, ``recall`` (per class ``precision``, ``recall``; a class's
    recall is its accuracy).
    """
    overall_keys = ["map50", "map50_95"] if task == "detect" else ["accuracy", "precision", "recall"]
    class_keys = ["ap50", "ap50_95"] if task == "detect" else ["precision", "recall"]
    overall = {
        key: {
            "float": _points(float_metrics.get(key)),
            "quantized": _points(quant_metrics.get(key)),
            "drop": _drop(float_metrics.get(key), quant_metrics.get(key)),
        }
        for key in overall_keys
    }
    per_class = {}
    for name, f_entry in float_metrics.get("per_class", {}).items():
        q_entry = quant_metrics.get("per_class", {}).get(name, {})
        per_class[name] = {
            key: {
                "float": _points(f_entry.get(key)),
                "quantized": _points(q_entry.get(key)),
                "drop": _drop(f_entry.get(key), q_entry.get(key)),
            }
            for key in class_keys
        }
    return {"overall": overall, "per_class": per_class}


def primary_metric(task: str) -> str:
    """The metric the gate watches: ``map50`` for detectors, ``accuracy`` (top-1) for classifiers."""
    return "map50" if task == "detect" else "accuracy"


def compare_models(
    float_path: str | Path,
    quant_path: str | Path,
    data_yaml: str | Path,
    split: str = "val",
    latency_runs: int = 50,
    progress: ProgressFactory = no_progress,
    loaded: Split | None = None,
) -> dict[str, Any]:
    """Measure a quantised model against its float twin on a dataset split (module docstring).

    Args:
        float_path: the float ``.tflite`` (same Keras model, ``--mode float``).
        quant_path: the quantised ``.tflite``; its embedded spec is used for both.
        data_yaml: the dataset; its labels must be the model's.
        split: the split to measure on (never the calibration images' train split).
        latency_runs: timed runs per model for the latency figures (0: skip latency).
        progress: a :data:`ProgressFactory`.
        loaded: ``split`` of ``data_yaml`` when the caller has loaded it already.

    Returns:
        The report as a JSON-ready dict (``worst_layers`` and ``gate`` are added by the caller).

    Raises:
        ModelError: the quantised model has no edgecnn metadata.
        UserError: the dataset does not fit the model (task or number of classes).
    """
    float_path, quant_path = Path(float_path), Path(quant_path)
    spec = read_spec(quant_path)
    if spec is None:
        raise ModelError(f"{quant_path} has no edgecnn metadata; quantise it with `edgecnn quantize`")
    data = loaded if loaded is not None else load_split(data_yaml, split)
    metrics_of = {}
    for name, path in (("float", float_path), ("quantized", quant_path)):
        with progress(f"evaluating the {name} model", len(data)) as update:
            metrics_of[name] = evaluate_tflite(path, data, spec, update)
    float_model = TFLiteModel(float_path, spec=spec)
    quant_model = TFLiteModel(quant_path)
    agreement, output_error = compare_outputs(float_model, quant_model, data, spec, progress)
    float_metrics, quant_metrics = metrics_of["float"], metrics_of["quantized"]
    metrics = metric_table(spec.task, float_metrics, quant_metrics)
    key = primary_metric(spec.task)
    float_size, quant_size = float_path.stat().st_size, quant_path.stat().st_size
    report: dict[str, Any] = {
        "task": spec.task,
        "model": spec.name,
        "float_model": str(float_path),
        "quantized_model": str(quant_path),
        "quantized_input": quant_model.input.dtype,
        "data": str(data_yaml),
        "split": split,
        "images": len(data),
        "primary_metric": key,
        "primary_drop": metrics["overall"][key]["drop"],
        "metrics": metrics,
        "agreement": agreement,
        "output_error": output_error,
        "size": {
            "float_bytes": float_size,
            "quantized_bytes": quant_size,
            "ratio": quant_size / float_size,
        },
    }
    if latency_runs > 0:
        report["latency"] = _latency(float_path, quant_path, latency_runs, progress)
    return report


def _latency(float_path: Path, quant_path: Path, runs: int, progress: ProgressFactory) -> dict[str, Any]:
    result: dict[str, Any] = {"threads": 1, "runs": runs, "machine": platform.machine()}
    with progress("timing float and quantised models", 2) as update:
        for k, (name, path) in enumerate((("float", float_path), ("quantized", quant_path)), start=1):
            bench = bench_model(path, threads=(1,), runs=runs, warmup=max(1, runs // 10)).results[0]
            result[name] = {"invoke_p50_ms": bench.stages["invoke"].p50, "frame_p50_ms": bench.frame.p50}
            update(k)
    result["speedup"] = result["float"]["invoke_p50_ms"] / result["quantized"]["invoke_p50_ms"]
    return result


def check_gate(report: dict[str, Any], max_drop: float | None) -> None:
    """Record the ``--max-drop`` gate in ``report["gate"]``; raise when it fails.

    The gate fails when the primary metric (:func:`primary_metric`) dropped by more than
    ``max_drop`` points, or when the drop is undefined (no ground truth to measure on).

    Raises:
        QualityGateError: the gate failed (exit code 1 in the CLI).
    """
    drop = report["primary_drop"]
    passed = max_drop is None or (drop is not None and drop <= max_drop)
    report["gate"] = {
        "metric": report["primary_metric"],
        "max_drop": max_drop,
        "drop": drop,
        "passed": passed,
    }
    if passed:
        return
    shown = "an undefined amount" if drop is None else f"{drop:.2f} points"
    where = report.get("report_dir", "the report")
    raise QualityGateError(
        f"quality gate failed: {report['primary_metric']} dropped by {shown} from the float to the "
        f"quantised model (--max-drop {max_drop:g}); see {where}"
    )


def _fmt(value: float | None, digits: int = 2) -> str:
    # round() then + 0.0 turns -0.00 into 0.00
    return "n/a" if value is None else f"{round(value, digits) + 0.0:.{digits}f}"


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.2f} %"


def render_markdown(report: dict[str, Any], chart: str | None = None) -> str:
    """``report.md``: the report as Markdown tables, after the image ``chart`` if given (a
    file name in the report folder)."""
    m = report["metrics"]
    size = report["size"]
    lines = [
        f"# Quantisation report: {report['model']}",
        "",
        f"- float model: `{report['float_model']}`",
        f"- quantised model: `{report['quantized_model']}` ({report.get('mode', 'int8')}, "
        f"{report['quantized_input']} input)",
        f"- data: `{report['data']}`, split {report['split']}, {report['images']} images",
    ]
    if "calibration" in report:
        c = report["calibration"]
        lines.append(
            f"- calibration: `{c['path']}`, {c['images']} images, manifest sha256 {c['manifest_sha256']}"
        )
        if c.get("source"):
            note = " (**other classes than the model's**)" if c.get("matches_model") is False else ""
            lines.append(f"- calibration source: `{c['source']}`{note}")
    gate = report.get("gate")
    if gate and gate["max_drop"] is not None:
        verdict = "passed" if gate["passed"] else "FAILED"
        lines.append(
            f"- gate: {gate['metric']} drop {_fmt(gate['drop'])} <= {gate['max_drop']:g} points: {verdict}"
        )
    lines += ["", "## Metrics (points)", "", "| metric | float | quantised | drop |", "|---|---:|---:|---:|"]
    for key, v in m["overall"].items():
        lines.append(f"| {key} | {_fmt(v['float'])} | {_fmt(v['quantized'])} | {_fmt(v['drop'])} |")
    if chart:
        lines += ["", f"![float and int8 per class, largest drop first]({chart})"]
    if m["per_class"]:
        keys = list(next(iter(m["per_class"].values())))
        header = " | ".join(f"{k} float | {k} quantised | {k} drop" for k in keys)
        lines += ["", "### Per class", "", f"| class | {header} |", "|---|" + "---:|" * (3 * len(keys))]
        for name, entry in m["per_class"].items():
            cells = " | ".join(
                f"{_fmt(entry[k]['float'])} | {_fmt(entry[k]['quantized'])} | {_fmt(entry[k]['drop'])}"
                for k in keys
            )
            lines.append(f"| {name} | {cells} |")
    a = report["agreement"]
    lines += ["", "## Agreement", ""]
    if a["kind"] == "top1":
        lines.append(
            f"Same top-1 class on {a['same_top1']} of {a['images']} images: **{_percent(a['value'])}**."
        )
    else:
        lines.append(
            f"{a['matched']} of {a['float_detections']} float detections (conf > {a['conf']:g}) have a "
            f"quantised detection of the same class with IoU >= {a['iou']:g}: "
            f"**{_percent(a['value'])}** "
            f"({a['quantized_detections']} quantised detections)."
        )
    lines += [
        "",
        "## Output error (dequantised vs float raw outputs)",
        "",
        "| output | mean abs error | max abs error | SNR dB | float range |",
        "|---|---:|---:|---:|---|",
    ]
    for e in report["output_error"]:
        lines.append(
            f"| {e['output']} | {_fmt(e['mean_abs_error'], 4)} | {_fmt(e['max_abs_error'], 4)} | "
            f"{_fmt(e['snr_db'], 1)} | {_fmt(e['float_min'], 3)} .. {_fmt(e['float_max'], 3)} |"
        )
    lines += [
        "",
        "## Size",
        "",
        f"float {size['float_bytes']} bytes, quantised {size['quantized_bytes']} bytes: "
        f"ratio **{size['ratio']:.3f}**.",
    ]
    if "latency" in report:
        lat = report["latency"]
        lines += [
            "",
            f"## Latency on this machine ({lat['machine']}, {lat['threads']} thread, "
            f"median of {lat['runs']} runs)",
            "",
            "| model | invoke ms | whole frame ms |",
            "|---|---:|---:|",
            *(
                f"| {label} | {lat[key]['invoke_p50_ms']:.3f} | {lat[key]['frame_p50_ms']:.3f} |"
                for label, key in (("float", "float"), ("quantised", "quantized"))
            ),
            "",
            "x86 timings do not predict a board's: on ARM, XNNPACK's int8 is about 2.7-3.2x faster "
            "than float (docs/quantization.md). Measure on the board with `edgecnn bench`.",
        ]
    worst = report.get("worst_layers")
    if worst:
        lines += [
            "",
            "## Worst layers (QuantizationDebugger, RMSE / scale)",
            "",
            "About 0.29 is rounding alone; much larger values point at a layer whose range fits badly.",
            "",
            "| # | op | tensor | RMSE / scale | RMSE | max abs error | scale |",
            "|---:|---|---|---:|---:|---:|---:|",
        ]
        for i, w in enumerate(worst, start=1):
            lines.append(
                f"| {i} | {w['op']} | `{w['tensor']}` | {w['rmse_over_scale']:.3f} | {w['rmse']:.4g} | "
                f"{w['max_abs_error']:.4g} | {w['scale']:.4g} |"
            )
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json``, the chart ``per_class.png`` (:mod:`edgecnn.quantize.chart`;
    without matplotlib, none) and ``report.md``, which shows the chart, into ``out_dir``
    (created).

    Returns:
        The paths of the JSON and Markdown files.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / REPORT_JSON, folder / REPORT_MD
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    chart = None
    if report["metrics"]["per_class"] and importlib.util.find_spec("matplotlib") is not None:
        from edgecnn.quantize.chart import CHART_FILE, plot_per_class

        chart = plot_per_class(report, folder / CHART_FILE).name
    md_path.write_text(render_markdown(report, chart))
    return json_path, md_path


def summary_lines(report: dict[str, Any]) -> Sequence[str]:
    """A few lines for the terminal: drops, agreement, size ratio."""
    m = report["metrics"]["overall"]
    metrics = ", ".join(
        f"{METRIC_NAMES.get(k, k)} {_fmt(v['float'])} -> {_fmt(v['quantized'])} (drop {_fmt(v['drop'])})"
        for k, v in m.items()
    )
    a = report["agreement"]
    kind = "top-1 agreement" if a["kind"] == "top1" else "box agreement"
    return [
        metrics,
        f"{kind} {_percent(a['value'])}, size ratio {report['size']['ratio']:.3f}",
    ]
