"""Daemon speed: loop throughput against raw ``invoke()``, start to first detection, RSS drift.

Usage: ``.venv/bin/python benchmarks/daemon.py [--threads 1 2] [--frames 100] [--rounds 15]
[--rss-frames 10000]``

The model is a Tiny YOLO v3 from edgecnn's registry at full width and 192 px (3 classes,
random weights; about a fifth of the work of the 416 px original), int8 with int8 I/O, its
spec embedded; the source is a 640x360 MJPG video (the size of picamera2's lores stream
here) played in a loop, every frame processed (``realtime: false``). Both are built
on the first run (the model with TensorFlow, in this process only) and cached under
``$TMPDIR/edgecnn-bench-daemon``.

1. Throughput: one daemon runs in this process (decode and prepare on the capture thread,
   invoke on the main thread, decode boxes, NMS and JSON on the finish thread, a writer
   thread for the file) on a source that can be paused. Each round pauses it, times
   ``--frames`` raw ``invoke()`` calls of a second interpreter with the same model and
   threads on a prepared input (the interpreter alone), then resumes the daemon and times
   its next ``--frames`` frames (after 5 frames to refill the pipeline). Adjacent
   measurements see the same machine load, which on a shared machine matters more than
   anything else. Ratio = loop fps / invoke fps per round, median over rounds (goal >= 0.90:
   capture and pre/post-processing overlap inference). Also reported: the fraction of the
   loop's time its main thread spent in ``invoke()`` (``inference_seconds_total``; the
   rest is the pipeline failing to keep the interpreter fed), and the CPU time per frame of
   the whole process and of its main thread against ``invoke()``'s alone.
   Each stage's own cost per frame, timed alone in this thread, shows what has to fit
   beside ``invoke()``: on N cores with T interpreter threads, the loop can only keep up
   when capture + prepare + finish fit in the N - T spare cores. When other processes
   take those cores (see the load average; Linux shares CPU fairly between sessions, so
   a busy machine gives this process about one core whatever its thread count), the
   ratio falls to invoke CPU / whole-process CPU per frame, whatever the pipeline does;
   with a spare core it can reach invoke CPU / main-thread CPU per frame (with one
   interpreter thread). Both bounds are printed.
2. Start to first detection: ``edgecnn run --model ... --source ... --jsonl ...`` as a
   child process, from spawn to the first record in the file (goal <= 2 s); with its
   parts: interpreter start-up and the CLI's imports for ``run``, the child-process
   model check as the daemon runs it (``validate_model(ops=False)``; it overlaps importing
   numpy, OpenCV and the interpreter, opening the source and building the sinks) and
   loading plus the first ``invoke`` in-process. Also the time to exit 2 on a bad config
   and on a corrupt model (goal <= 1 s).
3. RSS: ``edgecnn run`` as a child process (no TensorFlow in it) runs ``--rss-frames``
   frames; its RSS is sampled every 0.5 s and a line fitted after the first 10 % of the
   run; the slope is reported in MB/hour at the measured rate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edgecnn.runtime.interpreter import TFLiteModel

ROOT = Path(__file__).resolve().parents[1]
INPUT = 192
WIDTH = 1.0
LABELS = ["person", "car", "dog"]
VIDEO_SIZE = (640, 360)
CLI = "from edgecnn.cli import main; main()"  # what the console script runs


def cache_dir() -> Path:
    key = hashlib.sha256(f"tiny_yolo_v3 {INPUT} {WIDTH} {LABELS} {VIDEO_SIZE} v1".encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "edgecnn-bench-daemon" / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_model(path: Path) -> None:
    """Tiny YOLO v3 (width ``WIDTH``, ``INPUT`` px), full-integer int8 with its spec embedded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from edgecnn.architectures import build_model as build
    from edgecnn.architectures import get_model_info
    from edgecnn.quantize.metadata_writer import embed_spec

    model = build("tiny_yolo_v3", num_classes=len(LABELS), input_size=INPUT, width=WIDTH)
    spec = get_model_info("tiny_yolo_v3").model_spec(LABELS, input_size=INPUT)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(32):
            yield [rng.random((1, INPUT, INPUT, 3), dtype=np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(embed_spec(converter.convert(), spec))


def build_video(path: Path, frames: int = 100) -> None:
    """A ``VIDEO_SIZE`` MJPG video: noise with a few moving boxes."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, VIDEO_SIZE)
    rng = np.random.default_rng(1)
    for i in range(frames):
        frame = rng.integers(0, 80, (VIDEO_SIZE[1], VIDEO_SIZE[0], 3), dtype=np.uint8)
        for j in range(3):
            x = (40 + 5 * i + 150 * j) % (VIDEO_SIZE[0] - 80)
            cv2.rectangle(frame, (x, 40 + 70 * j), (x + 80, 140 + 70 * j), (60 * j, 200, 230 - 60 * j), -1)
        writer.write(frame)
    writer.release()


def stage_costs(model_path: Path, video: Path, n: int = 100) -> dict[str, float]:
    """Median milliseconds per frame of each stage, run alone in this thread."""
    import cv2

    from edgecnn.config.device import DeviceConfig
    from edgecnn.daemon.frames import FrameProcessor
    from edgecnn.sinks.base import FrameResult

    model = TFLiteModel(model_path, num_threads=1)
    assert model.spec is not None
    config = DeviceConfig.model_validate(
        {"model": {"path": str(model_path)}, "source": {"type": "opencv", "input": 0}}
    )
    processor = FrameProcessor(model, config.resolve(model.spec))
    cap = cv2.VideoCapture(str(video))
    times: dict[str, list[float]] = {"capture (MJPG decode)": [], "prepare": [], "invoke (1 thread)": [],
                                     "finish (decode, NMS, JSON)": []}  # fmt: skip
    for _ in range(n):
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
        t1 = time.perf_counter()
        tensor, box_map = processor.prepare(frame)
        t2 = time.perf_counter()
        model.invoke_raw(tensor)
        outputs = model.outputs_raw()
        t3 = time.perf_counter()
        detections = processor.detections(outputs, box_map)
        record = FrameResult(
            "t", 1, "s", "m", {"pre": 0.0, "infer": 0.0, "post": 0.0}, detections
        ).to_record()
        json.dumps(record)
        t4 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[key].append(value * 1000)
    return {key: statistics.median(values) for key, values in times.items()}


def raw_invoke_fps(model: TFLiteModel, n: int) -> tuple[float, float]:
    """Invokes per second of the interpreter alone, on the input already set, and the CPU
    seconds per invoke (of this process: with one interpreter thread, this thread's)."""
    for _ in range(3):
        model.invoke_raw()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        model.invoke_raw()
    return n / (time.perf_counter() - start), (time.process_time() - cpu) / n


class GatedDaemon:
    """The daemon in this process on a looping video whose reads can be paused.

    Args:
        model_path: the model.
        video: the video file.
        threads: interpreter threads.
        out: the JSON-lines file the daemon writes.
    """

    def __init__(self, model_path: Path, video: Path, threads: int, out: Path) -> None:
        from edgecnn.config.device import DeviceConfig
        from edgecnn.daemon.loop import Daemon
        from edgecnn.daemon.notify import Notifier
        from edgecnn.sources.base import Frame
        from edgecnn.sources.opencv import OpenCVSource

        self.gate = threading.Event()
        self.gate.set()
        gate = self.gate

        class GatedSource(OpenCVSource):
            def read(self) -> Frame:
                gate.wait()
                return super().read()

        config = DeviceConfig.model_validate(
            {
                "device": "bench",
                "model": {"path": str(model_path), "num_threads": threads},
                "source": {
                    "type": "opencv", "input": str(video), "loop": True, "realtime": False,
                    "stall_timeout": 600,
                },
                "sinks": [{"type": "jsonl", "path": str(out), "max_bytes": 50_000_000, "backups": 1}],
            }
        )  # fmt: skip
        self.daemon = Daemon(config, source_factory=lambda: GatedSource(config.source), notifier=Notifier())
        self.thread = threading.Thread(target=self.daemon.run, daemon=True)
        self.thread.start()
        self._wait_frames(5)

    def _wait_frames(self, n: int) -> tuple[float, int]:
        """Wait until ``n`` frames were processed; (monotonic time of the last one, frames so far).

        The time comes from the daemon's own record of its last frame, so polling need not
        be fine-grained; a coarse poll keeps this thread from taking CPU from the daemon.
        """
        stats = self.daemon.stats
        while stats.frames < n:
            if not self.thread.is_alive():
                raise RuntimeError("the daemon stopped")
            time.sleep(0.01)
        return time.monotonic() - (stats.last_frame_age() or 0.0), stats.frames

    def pause(self) -> None:
        """Stop feeding frames and wait until the pipeline is empty."""
        self.gate.clear()
        stats = self.daemon.stats
        last = -1
        while stats.frames != last:
            last = stats.frames
            time.sleep(0.1)

    def measure(self, frames: int) -> tuple[float, float, float, float]:
        """Resume, skip 5 frames; the rate of the next ``frames`` frames, the fraction of
        that time the main thread spent in ``invoke()``, and CPU seconds per frame meanwhile
        of the whole process and of the daemon's main (inference) thread."""
        stats = self.daemon.stats
        start = stats.frames
        main_clock = time.pthread_getcpuclockid(self.thread.ident)  # type: ignore[arg-type]
        self.gate.set()
        t0, n0 = self._wait_frames(start + 5)
        busy0, cpu0 = stats.snapshot()["inference_seconds_total"], time.process_time()
        main0 = time.clock_gettime(main_clock)
        t1, n1 = self._wait_frames(n0 + frames)
        busy1, cpu1 = stats.snapshot()["inference_seconds_total"], time.process_time()
        main1 = time.clock_gettime(main_clock)
        n = n1 - n0
        return n / (t1 - t0), (busy1 - busy0) / (t1 - t0), (cpu1 - cpu0) / n, (main1 - main0) / n

    def close(self) -> None:
        self.gate.set()
        self.daemon.stop("benchmark done")
        self.thread.join(30)


def rss_run(
    model_path: Path, video: Path, threads: int, frames: int, env: dict[str, str]
) -> tuple[float, list]:
    """``edgecnn run`` for ``frames`` frames (JSON lines to stdout), its RSS sampled every 0.5 s.

    Returns:
        ``(frames per second, [(seconds, frames so far, RSS MB), ...])``.
    """
    config = cache_dir() / "rss.yaml"  # a looping file source needs the config form
    config.write_text(
        f"model: {{path: {model_path}, num_threads: {threads}}}\n"
        f"source: {{type: opencv, input: {video}, loop: true, realtime: false}}\n"
        "sinks: [{type: jsonl}]\n"
    )
    argv = [sys.executable, "-c", CLI, "run", "--config", str(config), "--max-frames", str(frames)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    counted = [0]

    def count() -> None:
        for _ in proc.stdout:  # type: ignore[union-attr]
            counted[0] += 1

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    marks = []
    start = time.perf_counter()
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            break
        marks.append((time.perf_counter() - start, counted[0], kb / 1000))
        time.sleep(0.5)
    proc.wait()
    reader.join(5)
    first = next(m for m in marks if m[1] > 0)
    return (counted[0] - first[1]) / (marks[-1][0] - first[0]), [m for m in marks if m[1] > 0]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - start, proc


def start_to_first_detection(model_path: Path, video: Path, out: Path, env: dict[str, str]) -> float:
    """Seconds from spawning ``edgecnn run`` to the first record in its JSON-lines file."""
    out.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-c",
        CLI,
        "run",
        "--model",
        str(model_path),
        "--source",
        str(video),
        "--jsonl",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while not (out.exists() and b"\n" in out.read_bytes()[:65536]):
            if proc.poll() is not None:
                raise RuntimeError(f"edgecnn run exited with {proc.returncode} before its first record")
            time.sleep(0.005)
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="interpreter threads to try")
    parser.add_argument("--frames", type=int, default=100, help="frames per throughput measurement")
    parser.add_argument("--rounds", type=int, default=15, help="throughput rounds (medians are reported)")
    parser.add_argument(
        "--starts", type=int, default=3, help="start-up measurements (median reported; 0: skip)"
    )
    parser.add_argument("--rss-frames", type=int, default=10_000, help="frames of the RSS run (0: skip)")
    args = parser.parse_args()

    folder = cache_dir()
    model_path = folder / f"tiny_yolo_v3_w{WIDTH:g}_{INPUT}_int8.tflite"
    video = folder / f"clip_{VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}.avi"
    if not model_path.exists():
        print("building the model (TensorFlow, first run only) ...", flush=True)
        build_model(model_path)
    if not video.exists():
        build_video(video)
    probe = TFLiteModel(model_path)
    print(
        f"model {model_path.name}: input {probe.input_shape} {probe.input.dtype}, "
        f"outputs {probe.output_shapes}, "
        f"{model_path.stat().st_size / 1e6:.2f} MB; video {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} MJPG; "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
    )
    out = folder / "bench.jsonl"

    costs = stage_costs(model_path, video)
    print(
        "\n0. each stage alone, median ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
    )
    print("\n1. throughput (per round: raw invoke with the daemon paused, then the daemon; medians)")
    for threads in args.threads:
        out.unlink(missing_ok=True)
        gated = GatedDaemon(model_path, video, threads, out)
        alone = TFLiteModel(model_path, num_threads=threads)
        alone.invoke_raw(np.random.default_rng(2).integers(-128, 127, alone.input_shape, dtype=np.int8))
        raw, loop, busy, raw_cpu, loop_cpu, main_cpu = [], [], [], [], [], []
        try:
            for _ in range(args.rounds):
                gated.pause()
                fps, cpu = raw_invoke_fps(alone, args.frames)
                raw.append(fps)
                raw_cpu.append(cpu)
                fps, occupied, cpu, main = gated.measure(args.frames)
                loop.append(fps)
                busy.append(occupied)
                loop_cpu.append(cpu)
                main_cpu.append(main)
        finally:
            gated.close()
        ratios = [lp / r for r, lp in zip(raw, loop, strict=True)]
        r, lp = statistics.median(raw), statistics.median(loop)
        print(
            f"   threads {threads}: raw invoke {r:6.1f} /s ({1000 / r:.2f} ms), "
            f"daemon loop {lp:6.1f} frames/s; ratio loop/invoke {statistics.median(ratios):.3f} "
            f"(goal >= 0.90; quartiles {np.percentile(ratios, 25):.2f}..{np.percentile(ratios, 75):.2f} "
            f"over {len(ratios)} rounds)"
        )
        med = statistics.median
        print(
            f"      the daemon's main thread was in invoke() {med(busy):.1%} of the time "
            "(the rest: waiting for a prepared frame or for the finish stage)"
        )
        # With more interpreter threads, invoke() also runs on threads other than the main one.
        spare = (
            f", {med(raw_cpu) / med(main_cpu):.2f} when the other stages have a spare core"
            if threads == 1
            else ""
        )
        print(
            f"      CPU per frame: {med(loop_cpu) * 1000:.2f} ms for the whole daemon, "
            f"{med(main_cpu) * 1000:.2f} ms for its main thread, against {med(raw_cpu) * 1000:.2f} ms "
            f"per invoke() alone: ratio bound {med(raw_cpu) / med(loop_cpu):.2f} when the process gets "
            f"one core's worth of CPU{spare}; load average {os.getloadavg()[0]:.2f}"
        )

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NOTIFY_SOCKET", None)
    if args.starts:
        print("\n2. start-up")
        firsts = [start_to_first_detection(model_path, video, out, env) for _ in range(args.starts)]
        imports = "import edgecnn.cli, edgecnn.cli.run_cmd"  # what `edgecnn run` imports before its work
        helps = [timed([sys.executable, "-c", imports], env)[0] for _ in range(args.starts)]
        from edgecnn.runtime.validate import validate_model

        checks = []
        for _ in range(args.starts):
            t0 = time.perf_counter()
            validate_model(model_path, ops=False)
            checks.append(time.perf_counter() - t0)
        loads = []
        for _ in range(args.starts):
            t0 = time.perf_counter()
            m = TFLiteModel(model_path)
            m.invoke_raw(np.zeros(m.input_shape, m.input_dtype))
            loads.append(time.perf_counter() - t0)
        bad_config = folder / "bad.yaml"
        bad_config.write_text(
            f"model: {{path: {model_path}}}\nsource: {{type: opencv, input: {video}}}\nthresholds: 2\n"
        )
        corrupt = folder / "corrupt.tflite"
        corrupt.write_bytes(model_path.read_bytes()[:5000])
        exit_config = [
            timed([sys.executable, "-c", CLI, "run", "--config", str(bad_config)], env)
            for _ in range(args.starts)
        ]
        exit_model = [
            timed([sys.executable, "-c", CLI, "run", "--model", str(corrupt), "--source", str(video)], env)
            for _ in range(args.starts)
        ]
        assert all(p.returncode == 2 for _, p in exit_config + exit_model)
        med = statistics.median
        print(
            f"   spawn to first record: {med(firsts):.2f} s (goal <= 2 s)  "
            f"runs {[round(v, 2) for v in firsts]}"
        )
        print(
            f"   of which: python + CLI imports {med(helps):.2f} s, "
            f"model check in a child process {med(checks):.2f} s (overlaps importing numpy, OpenCV "
            f"and the interpreter and opening the source), load + first invoke {med(loads) * 1000:.0f} ms"
        )
        print(
            f"   exit 2 on a bad config {med(t for t, _ in exit_config):.2f} s "
            f"(runs {[round(t, 2) for t, _ in exit_config]}), "
            f"on a corrupt model {med(t for t, _ in exit_model):.2f} s "
            f"(runs {[round(t, 2) for t, _ in exit_model]}) (goal <= 1 s); "
            f"load average {os.getloadavg()[0]:.2f}"
        )

    if args.rss_frames:
        threads = args.threads[-1]
        print(
            f"\n3. RSS of `edgecnn run` over {args.rss_frames} frames "
            f"(threads {threads}, JSON lines to a pipe)"
        )
        fps, marks = rss_run(model_path, video, threads, args.rss_frames, env)
        steady = marks[len(marks) // 10 :]
        t = np.array([m[0] for m in steady])
        rss = np.array([m[2] for m in steady])
        slope = float(np.polyfit(t, rss, 1)[0]) if len(steady) > 2 else float("nan")
        print(
            f"   {fps:.1f} frames/s over {marks[-1][0]:.0f} s; "
            f"RSS after the first frame {marks[0][2]:.1f} MB, after 10 % {steady[0][2]:.1f} MB, "
            f"end {marks[-1][2]:.1f} MB, max {max(m[2] for m in marks):.1f} MB"
        )
        print(
            f"   slope of a line fitted after 10 %: {slope * 3600:+.2f} MB/hour "
            f"({slope / fps * 1000 * 1000:+.2f} kB per 1000 frames)"
        )
    out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
