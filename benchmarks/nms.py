"""Speed of edgecnn's batched_nms against cv2.dnn.NMSBoxesBatched, measured in the same run.

Usage: ``.venv/bin/python benchmarks/nms.py [--rounds 20] [--reps 50] [--seed 0]``

Three OpenCV references: ``OpenCV lists``, Python lists of float ``x, y, w, h`` built once
outside the timing (its fast path; the goal's reference), and two ways to call it from the
numpy ``xyxy`` arrays a detector produces, which is what batched_nms gets: ``OpenCV arrays``
converts them to lists first (conversion timed too), ``OpenCV numpy`` passes ``x, y, w, h``,
scores and class ids as numpy arrays (the binding converts them itself, more slowly than
lists). ``vs numpy`` is the ratio against the faster of those two. All keep the same boxes,
which is checked first. Calls alternate in rounds (``reps`` calls of one, then of the other) so that
both see the same machine load; each call is timed with ``time.perf_counter`` and the median
is reported, with the ratio ``batched_nms / OpenCV`` (below 1 means faster than OpenCV).
The load average is printed before and after the cases: on a shared machine every timing
slows down under load, so compare ratios rather than times, and note the load with them.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from edgecnn.postprocess import batched_nms

IOU = 0.45


def clustered(rng: np.random.Generator, n: int, objects: int, classes: int) -> tuple[np.ndarray, ...]:
    """Detector-like output before NMS: ``n`` jittered copies of ``objects`` boxes in 640x640."""
    obj_wh = rng.uniform(16, 160, (objects, 2))
    obj_xy = rng.uniform(0, 640, (objects, 2))
    obj_cls = rng.integers(0, classes, objects)
    pick = rng.integers(0, objects, n)
    wh = obj_wh[pick] * rng.uniform(0.8, 1.25, (n, 2))
    xy = obj_xy[pick] + rng.normal(0, 0.1, (n, 2)) * obj_wh[pick]
    return np.concatenate([xy - wh / 2, xy + wh / 2], axis=1), rng.random(n).astype(np.float32), obj_cls[pick]


def uniform(rng: np.random.Generator, n: int, classes: int) -> tuple[np.ndarray, ...]:
    """Boxes of 8-128 px anywhere in 640x640, random classes."""
    wh = rng.uniform(8, 128, (n, 2))
    xy = rng.uniform(0, 640, (n, 2))
    return (
        np.concatenate([xy - wh / 2, xy + wh / 2], axis=1),
        rng.random(n).astype(np.float32),
        rng.integers(0, classes, n),
    )


def median_ms(funcs: list[Callable[[], object]], rounds: int, reps: int) -> list[float]:
    times: list[list[float]] = [[] for _ in funcs]
    gc.disable()
    try:
        for _ in range(rounds):
            for f, out in zip(funcs, times, strict=True):
                for _ in range(reps):
                    start = time.perf_counter()
                    f()
                    out.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return [statistics.median(t) * 1e3 for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds (default 20)")
    parser.add_argument("--reps", type=int, default=50, help="calls per round for 1k boxes (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [
        ("1k clustered, 20 objects, 3 classes", clustered(rng, 1000, 20, 3), 1.0),
        ("10k clustered, 100 objects, 10 classes", clustered(rng, 10_000, 100, 10), 1.5),
        ("1k uniform, 5 classes", uniform(rng, 1000, 5), 1.5),
    ]
    print(
        f"numpy {np.__version__}, opencv {cv2.__version__}, IoU {IOU}, median of {args.rounds} rounds, "
        f"load average {_load()}"
    )
    print(
        f"{'case':40} {'kept':>5} {'OpenCV lists':>12} {'OpenCV arrays':>13} {'OpenCV numpy':>12} "
        f"{'edgecnn':>8} {'ratio':>6} {'goal':>5} {'vs numpy':>8}"
    )
    for name, (boxes, scores, class_ids), goal in cases:
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
        score_list = scores.tolist()
        id_list = class_ids.tolist()

        def opencv(xywh: list = xywh, score_list: list = score_list, id_list: list = id_list) -> object:
            return cv2.dnn.NMSBoxesBatched(xywh, score_list, id_list, 0.0, IOU)

        def ours(
            boxes: np.ndarray = boxes, scores: np.ndarray = scores, class_ids: np.ndarray = class_ids
        ) -> object:
            return batched_nms(boxes, scores, class_ids, IOU)

        def opencv_from_arrays(
            boxes: np.ndarray = boxes, scores: np.ndarray = scores, class_ids: np.ndarray = class_ids
        ) -> object:
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
            return cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), 0.0, IOU)

        def opencv_numpy(
            boxes: np.ndarray = boxes, scores: np.ndarray = scores, class_ids: np.ndarray = class_ids
        ) -> object:
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
            return cv2.dnn.NMSBoxesBatched(xywh, scores, class_ids.astype(np.int32), 0.0, IOU)

        kept = ours()
        for reference in (opencv, opencv_from_arrays, opencv_numpy):
            if not np.array_equal(kept, np.asarray(reference()).reshape(-1)):
                raise SystemExit(f"{name}: batched_nms and OpenCV keep different boxes")
        reps = max(2, args.reps * 1000 // len(boxes))
        t_cv, t_cv_arrays, t_cv_numpy, t_ours = median_ms(
            [opencv, opencv_from_arrays, opencv_numpy, ours], args.rounds, reps
        )
        t_from_numpy = min(t_cv_arrays, t_cv_numpy)
        print(
            f"{name:40} {kept.size:5d} {t_cv:9.3f} ms {t_cv_arrays:10.3f} ms {t_cv_numpy:9.3f} ms "
            f"{t_ours:5.3f} ms {t_ours / t_cv:5.2f}x {goal:4.1f}x {t_ours / t_from_numpy:7.2f}x"
        )
    print(f"load average {_load()}")


def _load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
