"""Is the input pipeline fast enough to keep training busy?

Writes a synthetic detection set (:func:`edgecnn.data.synth.write_synth_dataset`) into a
temporary folder, then measures, on the same machine in the same run:

1. the ``tf.data`` pipeline alone (:func:`edgecnn.data.pipeline.make_dataset`, training
   augmentation on: mosaic, affine, HSV, flips): images/s of wall time and CPU ms per image
   (all threads), for the first epoch (JPEG decoding into the in-memory cache) and for later
   epochs (from the cache);
2. if ``edgecnn.architectures`` is importable: a plain Keras train step
   (``model.train_on_batch`` with MSE on the raw outputs, a proxy for the compute of real
   training), on batches already in memory and fed by the pipeline, alternating rounds,
   medians.

On 2 cores the pipeline and the train step share the CPU, so the figure that matters is the
CPU share of the pipeline (its CPU time per image over the sum of both); the wall-clock
rates of the train step vary by +-25 % from run to run here.

Usage: ``.venv/bin/python benchmarks/pipeline.py [--imgsz 160] [--batch 32] [--images 512]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from edgecnn.data import load_split
from edgecnn.data.augment import AugmentConfig
from edgecnn.data.pipeline import make_dataset
from edgecnn.data.synth import write_synth_dataset
from edgecnn.runtime.spec import InputSpec


def _measure(run: Callable[[], int]) -> tuple[float, float]:
    """``(images/s wall, CPU ms per image)`` of ``run()``, which returns the images it handled."""
    wall, cpu = time.perf_counter(), time.process_time()
    images = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return images / wall, 1000 * cpu / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=160, help="image and input size in pixels")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--images", type=int, default=512, help="images in the synthetic set")
    parser.add_argument("--model", default="tiny_yolo_v3", help="registry name for the train-step proxy")
    parser.add_argument("--steps", type=int, default=8, help="train steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each train-step kind")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_yaml = write_synth_dataset(
            Path(tmp), "detect", n=args.images, imgsz=args.imgsz, ratios=(1.0, 0.0)
        )
        split = load_split(data_yaml, "train")
        spec = InputSpec(width=args.imgsz, height=args.imgsz)
        config = AugmentConfig()
        ds = make_dataset(split, spec, batch_size=args.batch, augment=config, seed=0)
        print(
            f"input pipeline: {len(split)} images, {args.imgsz} px, batch {args.batch}, "
            f"default augmentation (mosaic {config.mosaic}), {os.cpu_count()} CPUs"
        )

        def epoch() -> int:
            return sum(len(x) for x, _ in ds)

        rate, cpu = _measure(epoch)
        print(f"  first epoch (decode + cache): {rate:8.1f} images/s, {cpu:6.2f} CPU ms/image")
        rate, pipeline_cpu = max(_measure(epoch) for _ in range(2))
        print(f"  later epochs (best of 2):     {rate:8.1f} images/s, {pipeline_cpu:6.2f} CPU ms/image")

        try:
            from edgecnn.architectures import build_model
        except ImportError as exc:
            print(f"train step: skipped (edgecnn.architectures not importable: {exc})")
            return
        model = build_model(args.model, num_classes=4, input_size=args.imgsz)
        model.compile(optimizer="adam", loss="mse")
        batches = [x for x, _ in ds.take(args.steps).as_numpy_iterator()]

        def zeros(batch: int) -> list[np.ndarray]:
            return [np.zeros((batch, *o.shape[1:]), np.float32) for o in model.outputs]

        def in_memory() -> int:
            for x in batches:
                model.train_on_batch(x, zeros(len(x)))
            return sum(len(x) for x in batches)

        def fed() -> int:
            images = 0
            for x, _ in ds.take(args.steps):
                model.train_on_batch(x, zeros(len(x)))
                images += len(x)
            return images

        in_memory()  # trace and warm up both paths
        fed()
        memory_runs, fed_runs = [], []
        for _ in range(args.rounds):
            memory_runs.append(_measure(in_memory))
            fed_runs.append(_measure(fed))
        step_rate = statistics.median(r for r, _ in memory_runs)
        step_cpu = statistics.median(c for _, c in memory_runs)
        fed_rate = statistics.median(r for r, _ in fed_runs)
        print(
            f"train step ({args.model}, {args.imgsz} px, MSE on raw outputs), "
            f"median of {args.rounds} rounds x {args.steps} steps:"
        )
        print(f"  batches in memory:   {step_rate:8.1f} images/s, {step_cpu:6.1f} CPU ms/image")
        print(f"  fed by the pipeline: {fed_rate:8.1f} images/s")
        print(f"pipeline alone / train step (images/s): {rate / step_rate:.1f}x")
        print(f"pipeline share of CPU time per trained image: {pipeline_cpu / (pipeline_cpu + step_cpu):.1%}")
        print(f"fed / in-memory train step (images/s): {fed_rate / step_rate:.2f}")


if __name__ == "__main__":
    main()
