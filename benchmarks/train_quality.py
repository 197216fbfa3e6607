"""Training quality on CPU: does ``edgecnn train`` with its defaults reach its quality bars in time?

(a) Detection: the default detector and hyper-parameters of ``edgecnn train`` on the default
    synthetic set (``write_synth_dataset`` defaults: 600 images, 160 px, 4 classes). Bar:
    validation mAP50 >= 0.9 within 10 minutes on 2 CPU cores.
(b) Classification: LeNet on scikit-learn's real handwritten digits (1797 images, 8x8 grey,
    upscaled to 28 px and written as class folders), 80 / 20 stratified split. Bar: validation
    accuracy >= 97 %.

Prints the measured validation metrics, the wall time, the process CPU time, and for (a) the
time at which validation first reached the bar. When other work shares the cores, wall time
overstates the cost: CPU time / 2 is what two idle cores would need (if fully used).

Usage::

    .venv/bin/python benchmarks/train_quality.py [--only detect|classify] [--epochs-det N]
        [--epochs-cls N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecnn.data import ImageRecord, write_dataset
from edgecnn.data.synth import write_synth_dataset
from edgecnn.train import TrainConfig, train

DET_BAR = 0.9
DET_BUDGET_S = 600.0
CLS_BAR = 0.97


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_digits(root: Path, size: int = 28, val_fraction: float = 0.2, seed: int = 0) -> Path:
    """scikit-learn's digits as class folders (``0`` .. ``9``), upscaled to ``size`` px; returns data.yaml."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    staging = root / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    names = [str(d) for d in range(10)]
    splits: dict[str, list[ImageRecord]] = {"train": [], "val": []}
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        n_val = round(len(indices) * val_fraction)
        for rank, i in enumerate(indices):
            pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
            image = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_LINEAR)
            path = staging / f"digit_{i:04d}.png"
            cv2.imwrite(str(path), image)
            split = "val" if rank < n_val else "train"
            splits[split].append(ImageRecord(path, len(splits[split]) + 1, size, size, label=label))
    data = write_dataset(root / "digits", splits, names, "folders")
    shutil.rmtree(staging)
    return data


def _first_reaching(history: list[dict[str, Any]], key: str, bar: float) -> tuple[int, float] | None:
    elapsed = 0.0
    for record in history:
        elapsed += record["seconds"]
        value = (record.get("val") or {}).get(key)
        if value is not None and value >= bar:
            return record["epoch"], elapsed
    return None


def bench_detect(work: Path, epochs: int | None) -> dict[str, Any]:
    data = write_synth_dataset(work / "synth")
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    config = TrainConfig(data=data, out=work / "det_run", **({"epochs": epochs} if epochs else {}))
    result = train(config)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    reached = _first_reaching(result.history, "map50", DET_BAR)
    return {
        "model": f"{result.spec.name} (width {config.width or 'default'}, {result.spec.input.width} px)",
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "val_map50": result.metrics["map50"],
        "val_map50_95": result.metrics["map50_95"],
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "reached_bar": None
        if reached is None
        else {"epoch": reached[0], "train_wall_s": round(reached[1], 1)},
        "pass": result.metrics["map50"] >= DET_BAR and (reached is not None and reached[1] <= DET_BUDGET_S),
    }


def bench_classify(work: Path, epochs: int | None) -> dict[str, Any]:
    data = write_digits(work)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    config = TrainConfig(
        data=data, model="lenet", out=work / "cls_run", **({"epochs": epochs} if epochs else {})
    )
    result = train(config)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    return {
        "model": "lenet (28 px grey)",
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "val_accuracy": result.metrics["accuracy"],
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "pass": result.metrics["accuracy"] >= CLS_BAR,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("detect", "classify"))
    parser.add_argument(
        "--epochs-det", type=int, default=None, help="Override the default epochs (detection)."
    )
    parser.add_argument("--epochs-cls", type=int, default=30, help="Epochs for LeNet on digits.")
    parser.add_argument("--out", type=Path, default=None, help="Keep the data and runs here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work = args.out or Path(tempfile.mkdtemp(prefix="edgecnn_train_quality_"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.only in (None, "detect"):
        results["detect"] = bench_detect(work, args.epochs_det)
        print("detect:", json.dumps(results["detect"]), flush=True)
    if args.only in (None, "classify"):
        results["classify"] = bench_classify(work, args.epochs_cls)
        print("classify:", json.dumps(results["classify"]), flush=True)
    print(json.dumps(results, indent=2))
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
