"""Board-side latency benchmark of a ``.tflite`` model (``edgecnn bench``).

Per thread count, a fresh interpreter runs ``warmup`` frames that are not timed, then
``runs`` timed frames. With an embedded spec each frame is the full per-frame path of the
board, timed in three stages on a synthetic 640x480 BGR frame:

* ``preprocess``: :func:`~edgecnn.runtime.preprocessing.preprocess` (or, for int8/uint8
  inputs, :func:`~edgecnn.runtime.preprocessing.preprocess_quantized`), as
  :meth:`~edgecnn.runtime.interpreter.TFLiteModel.run_frame` does;
* ``invoke``: the interpreter alone;
* ``postprocess``: dequantising the outputs, then for detectors
  :func:`~edgecnn.postprocess.decode_yolo` and :func:`~edgecnn.postprocess.filter_detections`
  at the spec's default thresholds and mapping boxes back to the frame; for classifiers
  the class probabilities.

Without a spec only ``invoke`` is timed, on a fixed random input. Reported per thread count:
p50 / p90 / p99 (``numpy.percentile``, linear interpolation) of each stage and of the whole
frame, FPS (1000 / median frame time), and once for the process, the peak resident set size
(``resource.getrusage``: the whole process, interpreter and Python included).

Board side: this module imports neither TensorFlow nor Keras (a test checks it in a fresh
process). Timings on an x86 workstation say little about an ARM board, where int8 is
reliably faster than float (docs/quantization.md): run it on the board.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import UserError
from edgecnn.postprocess.classify import class_probabilities
from edgecnn.postprocess.decode import decode_yolo
from edgecnn.postprocess.filter import filter_detections
from edgecnn.runtime.backend import MAX_THREADS
from edgecnn.runtime.interpreter import TFLiteModel, quantize_tensor
from edgecnn.runtime.preprocessing import preprocess, preprocess_quantized
from edgecnn.runtime.resolve import resolve_file_spec

#: The synthetic camera frame, width x height.
FRAME_SIZE = (640, 480)
STAGES = ("preprocess", "invoke", "postprocess")


@dataclass(frozen=True)
class Stats:
    """Latency percentiles of one stage, in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> Stats:
        """Percentiles of durations given in seconds."""
        ms = np.asarray(samples, dtype=np.float64) * 1000.0
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(ms.mean()), float(ms.min()), float(ms.max()))


@dataclass(frozen=True)
class ThreadResult:
    """The timings at one interpreter thread count.

    Attributes:
        threads: interpreter threads.
        runs: timed frames.
        stages: per stage (``preprocess``, ``invoke``, ``postprocess``) its :class:`Stats`;
            ``invoke`` only when the model has no spec.
        frame: the sum of the stages, per frame.
        fps: frames per second at the median frame time.
        detections: detections in the last frame (detectors), else None.
    """

    threads: int
    runs: int
    stages: dict[str, Stats]
    frame: Stats
    fps: float
    detections: int | None = None


@dataclass(frozen=True)
class BenchResult:
    """The benchmark of one model (see the module docstring)."""

    model: str
    size: int
    backend: str
    input_shape: tuple[int, ...]
    input_dtype: str
    task: str | None
    frame_size: tuple[int, int] | None
    warmup: int
    results: tuple[ThreadResult, ...]
    peak_rss_mib: float
    machine: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``edgecnn bench --json`` prints)."""
        doc = asdict(self)
        doc["input_shape"] = list(self.input_shape)
        doc["frame_size"] = list(self.frame_size) if self.frame_size else None
        return doc

    def describe(self) -> str:
        """A human-readable table (what ``edgecnn bench`` prints)."""
        shape = "x".join(map(str, self.input_shape))
        frame = f", frame {self.frame_size[0]}x{self.frame_size[1]}" if self.frame_size else ""
        lines = [
            f"model    {self.model} ({self.size / 1024:.1f} KiB), {self.task or 'no spec'}, "
            f"input {shape} {self.input_dtype}{frame}",
            f"backend  {self.backend} on {self.machine}, {self.warmup} warm-up frames",
            f"{'threads':>7}  {'stage':<11}  {'p50 ms':>8}  {'p90 ms':>8}  {'p99 ms':>8}  {'FPS':>7}",
        ]
        for r in self.results:
            for name, s in r.stages.items():
                lines.append(f"{r.threads:>7}  {name:<11}  {s.p50:8.3f}  {s.p90:8.3f}  {s.p99:8.3f}")
            f = r.frame
            lines.append(
                f"{r.threads:>7}  {'frame':<11}  {f.p50:8.3f}  {f.p90:8.3f}  {f.p99:8.3f}  {r.fps:7.1f}"
            )
        lines.append(f"peak RSS {self.peak_rss_mib:.1f} MiB (whole process)")
        return "\n".join(lines)


def synthetic_frame(width: int = FRAME_SIZE[0], height: int = FRAME_SIZE[1], seed: int = 0) -> np.ndarray:
    """A deterministic ``(height, width, 3)`` uint8 BGR frame: a smooth gradient with noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    frame = ramp * np.array([0.3, 0.6, 0.9], np.float32) + rng.normal(0, 25, (height, width, 3))
    return np.clip(frame, 0, 255).astype(np.uint8)


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def parse_threads(text: str | Sequence[int]) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``.

    Raises:
        UserError: not a comma-separated list of integers from 1 to :data:`MAX_THREADS` (64,
            as ``edgecnn run``'s ``model.num_threads``).
    """
    try:
        values = [int(v) for v in text.split(",") if v.strip()] if isinstance(text, str) else list(text)
    except ValueError:
        raise UserError(f"--threads: expected comma-separated integers, e.g. 1,2,4; got {text!r}") from None
    if not values or any(not 1 <= v <= MAX_THREADS for v in values):
        raise UserError(f"--threads: thread counts must be 1..{MAX_THREADS}, got {text!r}")
    return values


def _frame_steps(
    model: TFLiteModel, frame: np.ndarray
) -> tuple[Callable[[], Any], Callable[[Any], int | None]]:
    """The preprocess and postprocess callables of one frame for a model with a spec."""
    spec = model.spec
    assert spec is not None
    info = model.input

    def pre() -> Any:
        if info.quantized:
            return preprocess_quantized(frame, spec.input, info.effective_scale, info.zero_point, info.dtype)
        tensor, box_map = preprocess(frame, spec.input)
        return tensor.astype(info.dtype, copy=False), box_map

    if spec.task == "classify":

        def post_classify(box_map: Any) -> int | None:
            class_probabilities(model.outputs_float()[0], spec.output.class_activation)
            return None

        return pre, post_classify

    order = model.scale_order
    th = spec.thresholds
    width, height = spec.input.width, spec.input.height

    def post_detect(box_map: Any) -> int | None:
        outputs = model.outputs_float()
        boxes, scores = decode_yolo(
            [outputs[i] for i in order], spec.output, width, height, spec.num_classes, min_objectness=th.conf
        )
        detections = filter_detections(boxes, scores, conf=th.conf, iou=th.iou, max_det=th.max_det)
        return len(detections.to_source(box_map))

    return pre, post_detect


def _bench_threads(
    model: TFLiteModel, threads: int, frame: np.ndarray | None, runs: int, warmup: int
) -> ThreadResult:
    clock = time.perf_counter
    if model.spec is None or frame is None:
        rng = np.random.default_rng(0)
        x = quantize_tensor(rng.random(model.input_shape, dtype=np.float32), model.input)
        for _ in range(warmup):
            model.invoke_raw(x)
        samples = []
        for _ in range(runs):
            t0 = clock()
            model.invoke_raw(x)
            samples.append(clock() - t0)
        invoke = Stats.from_seconds(samples)
        return ThreadResult(threads, runs, {"invoke": invoke}, invoke, 1000.0 / invoke.p50)

    pre, post = _frame_steps(model, frame)
    count = None
    for _ in range(warmup):
        raw, box_map = pre()
        model.invoke_raw(raw)
        count = post(box_map)
    times = np.zeros((runs, 3))
    for k in range(runs):
        t0 = clock()
        raw, box_map = pre()
        t1 = clock()
        model.invoke_raw(raw)
        t2 = clock()
        count = post(box_map)
        t3 = clock()
        times[k] = (t1 - t0, t2 - t1, t3 - t2)
    stages = {name: Stats.from_seconds(times[:, i]) for i, name in enumerate(STAGES)}
    frame_stats = Stats.from_seconds(times.sum(axis=1))
    return ThreadResult(threads, runs, stages, frame_stats, 1000.0 / frame_stats.p50, count)


def bench_model(
    path: str | Path,
    threads: Sequence[int] = (1,),
    runs: int = 100,
    warmup: int = 10,
    frame: np.ndarray | None = None,
    backend: str | None = None,
    progress: Callable[[int], None] | None = None,
    spec_settings: Mapping[str, Any] | None = None,
) -> BenchResult:
    """Time a ``.tflite`` model per thread count (see the module docstring).

    Args:
        path: the model file (its embedded spec, if any, gives preprocessing and decoding).
        threads: interpreter thread counts to measure, each with its own interpreter.
        runs: timed frames per thread count.
        warmup: untimed frames first, per thread count.
        frame: the BGR frame to use; default :func:`synthetic_frame` (640x480).
        backend: force an interpreter backend (see :mod:`edgecnn.runtime.backend`).
        progress: called with the number of thread counts done.
        spec_settings: settings for a model without edgecnn metadata
            (:func:`~edgecnn.runtime.resolve.resolve_file_spec`); with them every stage is timed.

    Raises:
        UserError: ``runs`` < 1, ``warmup`` < 0 or bad thread counts.
        ModelError: the model cannot be loaded.
    """
    if runs < 1 or warmup < 0:
        raise UserError(f"need --runs >= 1 and --warmup >= 0, got {runs} and {warmup}")
    counts = parse_threads(threads)
    spec = resolve_file_spec(path, spec_settings) if spec_settings else None  # None: the embedded one
    results = []
    model = None
    for k, n in enumerate(counts, start=1):
        model = TFLiteModel(path, num_threads=n, backend=backend, spec=spec)
        if frame is None and model.spec is not None:
            frame = synthetic_frame()
        results.append(_bench_threads(model, n, frame, runs, warmup))
        if progress is not None:
            progress(k)
    assert model is not None
    has_frame = model.spec is not None and frame is not None
    return BenchResult(
        model=str(path),
        size=Path(path).stat().st_size,
        backend=model.backend,
        input_shape=model.input_shape,
        input_dtype=model.input.dtype,
        task=model.spec.task if model.spec else None,
        frame_size=(int(frame.shape[1]), int(frame.shape[0])) if has_frame else None,
        warmup=warmup,
        results=tuple(results),
        peak_rss_mib=peak_rss_mib(),
        machine=platform.machine(),
    )
