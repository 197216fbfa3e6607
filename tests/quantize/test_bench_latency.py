"""``edgecnn bench``: percentiles per thread count, the per-stage split for spec'd models, peak
RSS, and no TensorFlow on the way (checked in a fresh process, as on a board)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecnn.bench import Stats, parse_threads, peak_rss_mib, synthetic_frame
from edgecnn.errors import UserError

ROOT = Path(__file__).resolve().parents[2]

BENCH_IN_FRESH_PROCESS = """
import json, sys
from edgecnn.bench import bench_model
result = bench_model(sys.argv[1], threads=(1, 2), runs=20, warmup=2)
print(json.dumps({"result": result.to_dict(), "loaded": sorted(sys.modules)}))
"""


def test_stats_are_numpy_percentiles_in_milliseconds() -> None:
    samples = np.linspace(0.001, 0.100, 100)  # 1 .. 100 ms
    stats = Stats.from_seconds(samples)
    p50, p90, p99 = np.percentile(samples * 1000, [50, 90, 99])
    assert (stats.p50, stats.p90, stats.p99) == pytest.approx((p50, p90, p99))
    assert (
        stats.p50 == pytest.approx(50.5)
        and stats.min == pytest.approx(1.0)
        and stats.max == pytest.approx(100.0)
    )


def test_peak_rss_is_the_kernels_high_water_mark() -> None:
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("no /proc on this system")
    hwm = next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
    assert peak_rss_mib() == pytest.approx(hwm / 1024, rel=0.05)


def test_parse_threads() -> None:
    assert parse_threads("1,2,4") == [1, 2, 4]
    assert parse_threads("64") == [64]
    for bad in ("0", "a,b", "", "1,-2", "65", "1,100000"):
        with pytest.raises(UserError, match=r"^--threads: "):
            parse_threads(bad)
    with pytest.raises(UserError, match=r"^--threads: "):
        parse_threads([100_000])


def test_synthetic_frame_is_a_deterministic_vga_bgr_frame() -> None:
    frame = synthetic_frame()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, synthetic_frame())
    assert frame.std() > 20  # not flat: decoding and NMS get real work


def test_missing_model_and_bad_threads_exit_2(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    result = run_cli("bench", tmp_path / "none.tflite")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"edgecnn: error: {tmp_path / 'none.tflite'}: no such file"
    (tmp_path / "m.tflite").write_bytes(b"TFL3")
    for threads in ("0", "100000"):  # 100000 made LiteRT segfault: 1..64, as for edgecnn run
        result = run_cli("bench", tmp_path / "m.tflite", "--threads", threads)
        assert result.exit_code == 2
        assert result.stderr == f"edgecnn: error: --threads: thread counts must be 1..64, got '{threads}'\n"


def test_a_bad_model_gives_one_line_and_nothing_before_it(tmp_path: Path) -> None:
    """In a fresh process, with the CLI's logging: no INFO line about the backend first."""
    path = tmp_path / "truncated.tflite"
    path.write_bytes(b"\x18\x00\x00\x00TFL3")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EDGECNN_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", "bench", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"edgecnn: error: {path}: truncated or corrupt: the Model table (bytes 24..28) extends past the end "
        "of the file (8 bytes)"
    ]


@pytest.mark.slow
@pytest.mark.tf
def test_detector_bench_in_a_fresh_process_loads_no_tensorflow(
    quantized: Callable[[str], dict[str, Any]],
) -> None:
    path = quantized("tiny_yolo_v3_test")["tflite"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EDGECNN_TFLITE_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", BENCH_IN_FRESH_PROCESS, str(path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.splitlines()[-1])
    assert not [m for m in doc["loaded"] if m.split(".")[0] in ("tensorflow", "keras", "tflite_runtime")]

    result = doc["result"]
    assert result["backend"] == "ai_edge_litert" and result["task"] == "detect"
    assert result["frame_size"] == [640, 480] and result["input_dtype"] == "int8"
    assert [r["threads"] for r in result["results"]] == [1, 2]
    for r in result["results"]:
        assert r["runs"] == 20
        assert set(r["stages"]) == {"preprocess", "invoke", "postprocess"}
        for stats in [*r["stages"].values(), r["frame"]]:
            assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"]
        assert r["frame"]["p50"] >= r["stages"]["invoke"]["p50"]
        assert r["fps"] == pytest.approx(1000.0 / r["frame"]["p50"])
        assert isinstance(r["detections"], int)
    assert result["peak_rss_mib"] > 10


@pytest.mark.slow
@pytest.mark.tf
def test_bench_cli_json_and_text(
    quantized: Callable[[str], dict[str, Any]], run_cli: Callable[..., Any]
) -> None:
    path = quantized("lenet_test")["tflite"]
    result = run_cli("bench", path, "--threads", "1,2", "--runs", "5", "--warmup", "1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["task"] == "classify" and [r["threads"] for r in doc["results"]] == [1, 2]
    assert all(set(r["stages"]) == {"preprocess", "invoke", "postprocess"} for r in doc["results"])
    assert all(r["detections"] is None for r in doc["results"])

    result = run_cli("bench", path, "--runs", "5", "--warmup", "0")
    assert result.exit_code == 0
    text = result.stdout
    assert "frame 640x480" in text and "peak RSS" in text
    assert len([line for line in text.splitlines() if line.split()[:2] == ["1", "frame"]]) == 1


@pytest.mark.slow
@pytest.mark.tf
def test_model_without_spec_times_invoke_only(
    make_run: Callable[..., Path], digits_data: Path, tmp_path: Path
) -> None:
    from edgecnn.bench import bench_model
    from edgecnn.quantize.convert import convert_keras, load_keras_model

    path = tmp_path / "plain.tflite"
    path.write_bytes(
        convert_keras(load_keras_model(make_run("lenet_test", digits_data, 3)), "float", "float")
    )
    result = bench_model(path, threads=(1,), runs=5, warmup=1)
    assert result.task is None and result.frame_size is None
    (r,) = result.results
    assert list(r.stages) == ["invoke"] and r.frame == r.stages["invoke"]
    assert "no spec" in result.describe()
