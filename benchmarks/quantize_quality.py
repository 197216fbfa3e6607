"""What full-integer int8 costs: size ratio, accuracy drop and float/int8 agreement on trained models.

Two models, each quantised with ``edgecnn calib build`` (200 train images) and
``edgecnn quantize --data`` (the float-vs-int8 report on the val split):

* a classifier: LeNet on scikit-learn's real handwritten digits (8x8, upscaled to 28x28 grey,
  written as class folders, 70 / 30 train / val);
* a detector: the default detector of ``edgecnn train`` (tiny YOLOv3, width 0.5, 160 px) on
  the default synthetic set of ``edgecnn data synth`` (600 images, 160 px, 4 classes).

Either model is trained here with :func:`edgecnn.train.train` unless a finished run folder is
given (``--cls-run`` / ``--det-run``: ``model.keras`` + ``spec.json`` + the data.yaml it was
trained on). Prints, per model, the size ratio, the drops in points and the agreement, and
checks them against the bars of the quantisation issue:

* int8 file <= 0.30x the float file;
* classification top-1 drop <= 1.0 point, detection mAP50 drop <= 1.5 points;
* float/int8 top-1 agreement >= 98 %.

Speed is not compared: on this x86 machine int8 is not faster than float (FACTS.md).

Usage::

    .venv/bin/python benchmarks/quantize_quality.py [--work /tmp/qbench] [--cls-epochs 20] [--det-epochs 60]
    .venv/bin/python benchmarks/quantize_quality.py --cls-run RUN --cls-data DATA.yaml --skip-det
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

BARS = {"size_ratio": 0.30, "classify_drop": 1.0, "detect_drop": 1.5, "top1_agreement": 0.98}


def write_digits(root: Path) -> Path:
    """scikit-learn's digits as 28x28 grey PNG class folders (70/30 train/val); returns data.yaml."""
    from sklearn.datasets import load_digits

    from edgecnn.data import write_data_yaml

    digits = load_digits()
    names = [str(d) for d in range(10)]
    order = np.random.default_rng(0).permutation(len(digits.target))
    n_train = int(0.7 * len(order))
    for k, i in enumerate(order):
        folder = root / ("train" if k < n_train else "val") / names[digits.target[i]]
        folder.mkdir(parents=True, exist_ok=True)
        image = cv2.resize(
            (digits.images[i] * 15.9).astype(np.uint8), (28, 28), interpolation=cv2.INTER_LINEAR
        )
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    return write_data_yaml(root / "data.yaml", names, {"train": "train", "val": "val"}, format="folders")


def train_run(data: Path, out: Path, model: str | None, epochs: int) -> Path:
    """Train with edgecnn's own loop; returns the run's model.keras."""
    from edgecnn.train import TrainConfig, train

    started = time.perf_counter()
    result = train(TrainConfig(data=data, model=model, epochs=epochs, out=out, exist_ok=True), progress=False)
    print(
        f"  trained {result.spec.name} for {result.epochs_run} epochs "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return result.model_path


def quantize(name: str, model: Path, data: Path, work: Path) -> dict[str, Any]:
    """Calibration set + int8 conversion + report; returns the report."""
    from edgecnn.quantize.calibration import build_calibration_set
    from edgecnn.quantize.workflow import run_quantize

    calib = work / f"{name}_calib"
    shutil.rmtree(calib, ignore_errors=True)
    build_calibration_set(data, calib, n=200)
    started = time.perf_counter()
    outcome = run_quantize(
        model, work / f"{name}_int8.tflite", calib=calib, data=data, report_dir=work / f"{name}_report"
    )
    print(
        f"  quantised and reported in {time.perf_counter() - started:.0f} s: {outcome.report_dir}/report.md"
    )
    assert outcome.report is not None
    return outcome.report


def summarise(name: str, report: dict[str, Any]) -> list[tuple[str, float | None, float, bool]]:
    """Print one model's numbers; return ``(bar, value, limit, passed)`` rows."""
    size = report["size"]
    overall = report["metrics"]["overall"]
    agreement = report["agreement"]
    print(f"{name}: {report['model']} on {report['data']} ({report['split']}, {report['images']} images)")
    print(
        f"  size      float {size['float_bytes']} B, int8 {size['quantized_bytes']} B, "
        f"ratio {size['ratio']:.3f}"
    )
    for key, v in overall.items():
        print(f"  {key:<9} float {v['float']:.2f}, int8 {v['quantized']:.2f}, drop {v['drop']:+.2f} points")
    value = agreement["value"]
    shown = "n/a" if value is None else f"{100 * value:.2f} %"
    print(f"  agreement ({agreement['kind']}) {shown}")
    for e in report["output_error"]:
        snr = "n/a" if e["snr_db"] is None else f"{e['snr_db']:.1f} dB"
        print(f"  output {e['output']}: mean abs error {e['mean_abs_error']:.4g}, SNR {snr}")
    worst = report.get("worst_layers") or []
    if worst:
        print(
            f"  worst layer: {worst[0]['op']} {worst[0]['tensor']} "
            f"RMSE/scale {worst[0]['rmse_over_scale']:.3f}"
        )
    rows = [("size ratio", size["ratio"], BARS["size_ratio"], size["ratio"] <= BARS["size_ratio"])]
    drop = report["primary_drop"]
    limit = BARS["detect_drop"] if report["task"] == "detect" else BARS["classify_drop"]
    rows.append((f"{report['primary_metric']} drop", drop, limit, drop is not None and drop <= limit))
    if agreement["kind"] == "top1":
        rows.append(
            (
                "top-1 agreement",
                value,
                BARS["top1_agreement"],
                value is not None and value >= BARS["top1_agreement"],
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgecnn-quantize-quality"))
    parser.add_argument("--cls-run", type=Path, help="A trained classifier's model.keras (skips training).")
    parser.add_argument("--cls-data", type=Path, help="The classifier's data.yaml (with --cls-run).")
    parser.add_argument("--det-run", type=Path, help="A trained detector's model.keras (skips training).")
    parser.add_argument("--det-data", type=Path, help="The detector's data.yaml (with --det-run).")
    parser.add_argument("--cls-epochs", type=int, default=20)
    parser.add_argument("--det-epochs", type=int, default=60)
    parser.add_argument("--skip-cls", action="store_true")
    parser.add_argument("--skip-det", action="store_true")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)

    rows: list[tuple[str, str, float | None, float, bool]] = []
    reports = {}
    if not args.skip_cls:
        print("classifier: LeNet on scikit-learn digits")
        data = args.cls_data or write_digits(args.work / "digits")
        model = args.cls_run or train_run(data, args.work / "cls_run", "lenet", args.cls_epochs)
        reports["classifier"] = quantize("classifier", model, data, args.work)
    if not args.skip_det:
        print("detector: default detector on the default synthetic set")
        if args.det_data:
            data = args.det_data
        else:
            from edgecnn.data.synth import write_synth_dataset

            data = args.work / "synth" / "data.yaml"
            if not data.exists():
                data = write_synth_dataset(args.work / "synth")
        model = args.det_run or train_run(data, args.work / "det_run", None, args.det_epochs)
        reports["detector"] = quantize("detector", model, data, args.work)

    print()
    for name, report in reports.items():
        rows += [(name, *row) for row in summarise(name, report)]
    print()
    print(f"{'model':<11} {'bar':<16} {'measured':>9} {'limit':>7}  result")
    for name, bar, value, limit, passed in rows:
        shown = "n/a" if value is None else f"{value:.3f}"
        print(f"{name:<11} {bar:<16} {shown:>9} {limit:>7}  {'pass' if passed else 'FAIL'}")
    (args.work / "quantize_quality.json").write_text(json.dumps(reports, indent=2) + "\n")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
