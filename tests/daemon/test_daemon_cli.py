"""``edgecnn run`` as a user runs it: a child process, a real video file, real models.

Records follow the schema with boxes in source-frame pixels (cross-checked against
TFLiteModel + post-processing by hand); classifiers give top-k labels; SIGTERM stops within
5 s with exit 0 and complete lines; bad configs and unusable models exit 2 with one line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgecnn.postprocess import decode_yolo, filter_detections, topk
from edgecnn.runtime.interpreter import TFLiteModel

ISO_TS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def _frame(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    for _ in range(index):
        cap.read()
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_detector_records_follow_the_schema_with_boxes_in_frame_pixels(
    tiny_models: dict[str, Path], video_file: Path, tmp_path: Path, cli: Callable[..., Any], jsonl: Any
) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli("run", "--model", str(tiny_models["det"]), "--source", str(video_file), "--jsonl", str(out))
    assert proc.returncode == 0, proc.stderr
    records = jsonl(out)
    assert [r["frame"] for r in records] == list(range(1, 13))  # a file: every frame, in order
    import re

    for record in records:
        assert set(record) == {"ts", "frame", "source", "model", "latency_ms", "detections"}
        assert re.match(ISO_TS, record["ts"])
        assert record["source"] == str(video_file) and record["model"] == "tiny_det"
        assert set(record["latency_ms"]) == {"pre", "infer", "post"}
        assert all(v >= 0 for v in record["latency_ms"].values())
        for det in record["detections"]:
            assert set(det) == {"label", "class_id", "score", "box"}
            assert det["label"] == ["person", "car"][det["class_id"]]
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 <= x2 <= 160 and 0 <= y1 <= y2 <= 120  # the 160x120 frame, not the 64x64 input
    assert sum(len(r["detections"]) for r in records) > 0

    # frame 5 by hand: the model's own preprocessing, decode, thresholds (the spec's: 0.2 / 0.5 / 50)
    model = TFLiteModel(tiny_models["det"])
    spec = model.spec
    assert spec is not None
    outputs, box_map = model.run_frame(_frame(video_file, 4))
    boxes, scores = decode_yolo(outputs, spec.output, 64, 64, 2)
    kept = filter_detections(boxes, scores, conf=0.2, iou=0.5, max_det=50).to_source(box_map)
    got = records[4]["detections"]
    assert len(got) == len(kept) > 0
    for det, box, score, class_id in zip(got, kept.boxes, kept.scores, kept.class_ids, strict=True):
        assert det["class_id"] == int(class_id)
        assert det["score"] == pytest.approx(float(score), abs=1e-5)
        assert det["box"] == pytest.approx([float(v) for v in box], abs=0.006)


def test_records_of_an_image_folder_name_their_file_and_skipped_files_are_named(
    tiny_models: dict[str, Path], video_file: Path, tmp_path: Path, cli: Callable[..., Any], jsonl: Any
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), _frame(video_file, i))
    (folder / "1b.jpg").write_text("a text file named .jpg")
    out = tmp_path / "out.jsonl"
    proc = cli("run", "--model", str(tiny_models["det"]), "--source", str(folder), "--jsonl", str(out))
    assert proc.returncode == 0, proc.stderr
    records = jsonl(out)
    assert [r["file"] for r in records] == [str(folder / f"{i}.jpg") for i in range(3)]
    assert [r["frame"] for r in records] == [1, 2, 3]
    assert f"skipping {folder / '1b.jpg'}: not an image OpenCV can decode" in proc.stderr


def test_classifier_gives_top_k_labels(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    config_file: Callable[..., Path],
    cli: Any,
    jsonl: Any,
) -> None:
    out = tmp_path / "cls.jsonl"
    config = config_file(
        f"model: {{path: {tiny_models['cls']}}}\n"
        f"source: {{type: opencv, input: {video_file}}}\n"
        "topk: 2\n"
        f"sinks: [{{type: jsonl, path: {out}}}]\n"
    )
    proc = cli("run", "--config", str(config), "--max-frames", "3")
    assert proc.returncode == 0, proc.stderr
    records = jsonl(out)
    assert len(records) == 3
    model = TFLiteModel(tiny_models["cls"])
    expected = topk(model.run_frame(_frame(video_file, 0))[0][0], k=2, activation="softmax")
    first = records[0]["detections"]
    assert [(d["class_id"], d["label"]) for d in first] == [
        (c, ["cat", "dog", "bird"][c]) for c, _ in expected
    ]
    assert [d["score"] for d in first] == pytest.approx([p for _, p in expected], abs=1e-5)
    assert all("box" not in d for r in records for d in r["detections"])


@pytest.mark.slow
def test_sigterm_stops_within_5_s_with_complete_lines(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    config_file: Callable[..., Path],
    cli_process: Callable[..., subprocess.Popen],
    notify_socket: Any,
    until: Callable[..., bool],
    jsonl: Any,
) -> None:
    out = tmp_path / "live.jsonl"
    config = config_file(
        "device: sigterm-test\n"
        f"model: {{path: {tiny_models['det']}, num_threads: 1}}\n"
        f"source: {{type: opencv, input: {video_file}, loop: true, fps: 200}}\n"
        "thresholds: 0.05\n"  # many detections: long lines, more bytes in flight at the signal
        f"sinks: [{{type: jsonl, path: {out}, max_bytes: 0}}]\n"
    )
    proc = cli_process("run", "--config", str(config), env={"NOTIFY_SOCKET": notify_socket.address})
    try:
        assert until(lambda: notify_socket.times("READY"), timeout=60), proc.stderr
        assert until(lambda: out.exists() and out.stat().st_size > 20_000, timeout=60)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.communicate()
    assert code == 0
    assert took < 5.0
    records = jsonl(out)  # fails on a torn last line
    assert [r["frame"] for r in records] == list(range(1, len(records) + 1))
    assert "STOPPING" in notify_socket.messages[-1][1]
    assert notify_socket.messages[-1][1]["STATUS"] == "stopping: SIGTERM"


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgecnn: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda data: data[: len(data) // 3], "truncated"),
        (lambda data: b"\x00" * 8 + os.urandom(len(data) - 8), "TFL3"),
        (lambda data: b"", ""),
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_an_unusable_model_exits_2_with_one_line(
    tiny_models: dict[str, Path], video_file: Path, tmp_path: Path, cli: Any, damage: Any, expected: str
) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(damage(tiny_models["det"].read_bytes()))
    line = _one_line_error(cli("run", "--model", str(bad), "--source", str(video_file)))
    assert str(bad) in line and expected in line


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "thresholds: {default: 0.4, person: 1.2}\n",
            ":4: thresholds.person: Input should be less than or equal to 1",
        ),
        (
            "thresholds: {persn: 0.5}\n",
            ":4: thresholds.persn: unknown label 'persn'; the model's labels: person, car",
        ),
        ("sinks: [{type: jsonl, rotate: 5}]\n", ":4: sinks.0.rotate: unknown key"),
        ("source2: 1\n", ":4: source2: unknown key"),
    ],
)
def test_a_bad_config_exits_2_with_one_line(
    tiny_models: dict[str, Path],
    video_file: Path,
    config_file: Callable[..., Path],
    cli: Any,
    config: str,
    expected: str,
) -> None:
    path = config_file(
        f"model: {{path: {tiny_models['det']}}}\nsource:\n  {{type: opencv, input: {video_file}}}\n" + config
    )
    line = _one_line_error(cli("run", "--config", str(path)))
    assert line == f"edgecnn: error: {path}{expected}"


@pytest.mark.slow
def test_flag_errors_exit_2_with_one_line(tiny_models: dict[str, Path], video_file: Path, cli: Any) -> None:
    line = _one_line_error(
        cli("run", "--model", str(tiny_models["det"]), "--source", str(video_file), "--conf", "1.5")
    )
    assert line == "edgecnn: error: --conf: Input should be less than or equal to 1"
    line = _one_line_error(cli("run", "--model", str(tiny_models["det"]), "--source", "nope.mp4"))
    relative = f"(relative to the working directory {os.getcwd()})"
    assert line == f"edgecnn: error: --source: nope.mp4: no such file {relative}"
    line = _one_line_error(cli("run", "--model", "/nope/m.tflite", "--source", str(video_file)))
    assert line == "edgecnn: error: --model: /nope/m.tflite: no such file"
    assert "pass --config FILE" in _one_line_error(cli("run", "--source", "0"))


@pytest.mark.parametrize("kind", ["text_as_video", "folder_of_unreadable_images"])
@pytest.mark.parametrize("validate", [False, True], ids=["run", "validate"])
def test_a_file_or_folder_without_frames_exits_2_at_once(
    tiny_models: dict[str, Path], tmp_path: Path, cli: Any, kind: str, validate: bool
) -> None:
    """A camera may come later; a file that is no video never will: exit 2 instead of retrying."""
    if kind == "text_as_video":
        source = tmp_path / "clip.mp4"
        source.write_text("not a video\n")
        expected = f"source input '{source}': OpenCV cannot open it as a video"
    else:
        source = tmp_path / "frames"
        source.mkdir()
        (source / "a.jpg").write_text("not a jpeg")
        (source / "b.png").write_bytes(b"\x89PNG broken")
        expected = f"source input '{source}': none of its 2 image files can be read"
    extra = ["--validate-config"] if validate else []
    proc = cli("run", "--model", str(tiny_models["det"]), "--source", str(source), *extra, timeout=30)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [f"edgecnn: error: {expected}"], proc.stderr


@pytest.mark.parametrize("output", ["below_a_file", "the_model", "the_source", "a_folder_refusing_files"])
def test_an_output_that_cannot_work_exits_2_before_anything_is_written(
    tiny_models: dict[str, Path], video_file: Path, tmp_path: Path, cli: Any, output: str
) -> None:
    model = tmp_path / "det.tflite"
    model.write_bytes(tiny_models["det"].read_bytes())
    source = tmp_path / "clip.avi"
    source.write_bytes(video_file.read_bytes())
    (tmp_path / "afile").write_text("a file\n")
    path, problem = {
        "below_a_file": (tmp_path / "afile" / "x.jsonl", f"cannot write {tmp_path}/afile/x.jsonl: "
                         f"{tmp_path}/afile is a file, not a folder"),
        "the_model": (model, f"{model} is also the model file (--model); refusing to write to it"),
        "the_source": (source, f"{source} is also the source file (--source); refusing to write to it"),
        # /proc refuses new files even to root, as a read-only mount refuses them to anyone
        "a_folder_refusing_files": (
            Path("/proc/edgecnn-test.jsonl"),
            "cannot write /proc/edgecnn-test.jsonl: cannot create files in /proc (No such file or directory)",
        ),
    }[output]
    before = {p: p.read_bytes() for p in (model, source, tmp_path / "afile")}
    for extra in (["--validate-config"], []):
        proc = cli("run", "--model", str(model), "--source", str(source), "--jsonl", str(path), *extra)
        assert _one_line_error(proc) == f"edgecnn: error: --jsonl: {problem}"
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.slow
def test_validate_config(
    tiny_models: dict[str, Path], video_file: Path, config_file: Callable[..., Path], cli: Any
) -> None:
    good = config_file(
        f"device: cam1\nmodel: {{path: {tiny_models['det']}}}\n"
        f"source: {{type: opencv, input: {video_file}}}\n"
        "classes: [car]\n"
    )
    proc = cli("run", "--config", str(good), "--validate-config")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "config OK: device cam1; model tiny_det (detect, 2 labels, input (1, 64, 64, 3) int8); "
        f"source {video_file}; sinks jsonl"
    )
    bad = config_file(
        f"model: {{path: {tiny_models['det']}}}\nsource: {{type: opencv, input: {video_file}}}\n"
        "classes: [bus]\n",
        name="bad.yaml",
    )
    assert ":3: classes.0: unknown label 'bus'" in _one_line_error(
        cli("run", "--config", str(bad), "--validate-config")
    )


# Records the modules loaded by the time the process exits (also on SystemExit from the CLI).
CLI_WITH_MODULES = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
from edgecnn.cli import main
main()
"""
HEAVY = ("numpy", "cv2", "ai_edge_litert", "tflite_runtime", "tensorflow", "keras")


@pytest.mark.parametrize("case", ["bad_config", "bad_label", "truncated_model"])
def test_a_bad_config_or_model_exits_2_before_the_heavy_imports(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    config_file: Callable[..., Path],
    case: str,
) -> None:
    """Validation comes first: no numpy, OpenCV or interpreter is imported for a run that fails it."""
    model = tiny_models["det"]
    if case == "truncated_model":
        model = tmp_path / "truncated.tflite"
        model.write_bytes(tiny_models["det"].read_bytes()[:500])
    extra = {"bad_config": "thresholds: 2\n", "bad_label": "classes: [bus]\n"}.get(case, "")
    config = config_file(f"model: {{path: {model}}}\nsource: {{type: opencv, input: {video_file}}}\n" + extra)
    modules = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "MODULES_OUT": str(modules)}
    env.pop("EDGECNN_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", CLI_WITH_MODULES, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    _one_line_error(proc)
    loaded = json.loads(modules.read_text())
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []
    assert "edgecnn.daemon.loop" not in loaded


RUN_WITHOUT_TF = """
import json, sys
import edgecnn.cli.run_cmd
from edgecnn.config.device import config_from_flags
from edgecnn.daemon.loop import Daemon
from edgecnn.daemon.notify import Notifier
import edgecnn.sources, edgecnn.sinks
edgecnn.sources.plugins(); edgecnn.sinks.plugins()
config = config_from_flags(sys.argv[1], sys.argv[2], jsonl=sys.argv[3])
Daemon(config, max_frames=3, notifier=Notifier()).run()
print(json.dumps(sorted(sys.modules)))
"""


def test_the_daemon_never_imports_tensorflow(
    tiny_models: dict[str, Path], video_file: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGECNN_TFLITE_BACKEND"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_WITHOUT_TF,
            str(tiny_models["det"]),
            str(video_file),
            str(tmp_path / "o.jsonl"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.splitlines()[-1])
    assert "edgecnn.daemon.loop" in loaded and "ai_edge_litert" in {m.split(".")[0] for m in loaded}
    assert [m for m in loaded if m.split(".")[0] in ("tensorflow", "keras")] == []
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 3


def test_a_model_without_metadata_runs_with_settings_from_the_config(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    config_file: Callable[..., Path],
    jsonl: Any,
) -> None:
    from edgecnn.config.device import load_device_config
    from edgecnn.daemon.loop import Daemon
    from edgecnn.daemon.notify import Notifier
    from edgecnn.daemon.startup import load_spec
    from edgecnn.errors import ConfigError

    source = f"source: {{type: opencv, input: {video_file}}}\n"
    bare = config_file(
        f"model: {{path: {tiny_models['det_plain']}, task: detect}}\n" + source, name="bare.yaml"
    )
    with pytest.raises(ConfigError, match=r"bare.yaml:1: model.path: .* set model.labels and model.anchors$"):
        load_spec(load_device_config(bare))
    settings = "  task: detect\n  labels: [person, car]\n  anchors: '10,14 23,27; 37,58 81,82'\n"
    detections = {}
    for model in ("det_plain", "det"):
        out = tmp_path / f"{model}.jsonl"
        config = config_file(
            f"model:\n  path: {tiny_models[model]}\n"
            + (settings if model == "det_plain" else "")
            + source
            + f"thresholds: 0.2\niou: 0.5\nmax_det: 50\nsinks: [{{type: jsonl, path: {out}}}]\n",
            name=f"{model}.yaml",
        )
        Daemon(load_device_config(config), max_frames=3, notifier=Notifier()).run()
        detections[model] = [record["detections"] for record in jsonl(out)]
    assert detections["det_plain"] == detections["det"] and any(detections["det"])


def test_a_watched_folder_keeps_running_and_takes_images_uploaded_later(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    config_file: Callable[..., Path],
    cli_process: Callable[..., subprocess.Popen],
    until: Callable[..., bool],
    jsonl: Any,
) -> None:
    upload = tmp_path / "upload"
    upload.mkdir()
    cv2.imwrite(str(upload / "cam-0001.jpg"), _frame(video_file, 0))
    out = tmp_path / "out.jsonl"
    with socket.socket() as s:  # a free port for the health endpoint
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = config_file(
        f"model: {{path: {tiny_models['det']}, num_threads: 1}}\n"
        f"source: {{type: opencv, input: {upload}, watch: true, stall_timeout: 1}}\n"
        f"sinks: [{{type: jsonl, path: {out}}}, {{type: http, port: {port}}}]\n"
    )
    proc = cli_process("run", "--config", str(config))
    try:
        assert until(lambda: out.exists() and len(jsonl(out)) == 1, timeout=60)
        time.sleep(3)  # idle: a folder source without watch would have ended by now
        assert proc.poll() is None
        # 3 s without a frame, more than stall_timeout: an idle upload folder is still healthy
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            health = json.loads(reply.read())
        assert reply.status == 200 and health["healthy"] is True, health
        # An upload written in two parts, as FTP does: read once, whole.
        data = cv2.imencode(".jpg", _frame(video_file, 1))[1].tobytes()
        with (upload / "cam-0002.jpg").open("wb") as f:
            f.write(data[:100])
            f.flush()
            time.sleep(0.5)
            f.write(data[100:])
        assert until(lambda: len(jsonl(out)) == 2, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert [Path(r["file"]).name for r in jsonl(out)] == ["cam-0001.jpg", "cam-0002.jpg"]
    assert "skipping" not in stderr and "offline" not in stderr


def test_save_writes_every_image_annotated_under_its_own_name(
    tiny_models: dict[str, Path], video_file: Path, tmp_path: Path, cli: Callable[..., Any], jsonl: Any
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"shot {i}.png"), _frame(video_file, i))
    out, saved = tmp_path / "out.jsonl", tmp_path / "saved"
    args = ("run", "--model", str(tiny_models["det"]), "--source", str(folder), "--jsonl", str(out))
    proc = cli(*args, "--save", str(saved))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in saved.iterdir()) == [f"shot {i}.jpg" for i in range(4)]
    for record in jsonl(out):
        image = cv2.imread(str(saved / (Path(record["file"]).stem + ".jpg")))
        assert image.shape == (120, 160, 3)  # the source image's size, not the model input's
    (tmp_path / "afile").write_text("")
    proc = cli(*args, "--save", str(tmp_path / "afile"))
    assert proc.returncode == 2 and "--save" in proc.stderr and "afile" in proc.stderr, proc.stderr


def test_masks_drop_the_detections_standing_in_them(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    config_file: Callable[..., Path],
    jsonl: Any,
) -> None:
    from edgecnn.config.device import load_device_config
    from edgecnn.daemon.loop import Daemon
    from edgecnn.daemon.notify import Notifier

    left = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
    found = {}
    for name, masks in (("plain", []), ("masked", [left])):
        out = tmp_path / f"{name}.jsonl"
        config = config_file(
            f"model: {{path: {tiny_models['det']}}}\nsource: {{type: opencv, input: {video_file}}}\n"
            f"thresholds: 0.05\nmasks: {masks}\nzones: {{left: {left}}}\n"
            f"sinks: [{{type: jsonl, path: {out}}}, "
            f"{{type: annotated, directory: {tmp_path / name}}}]\n",
            name=f"{name}.yaml",
        )
        Daemon(load_device_config(config), max_frames=6, notifier=Notifier()).run()
        found[name] = [record["detections"] for record in jsonl(out)]
    # The pictures show the mask: its half of the frame is darker, the other half is not.
    plain, masked = (cv2.imread(str(tmp_path / n / "frame_000001.jpg")).astype(int) for n in found)
    darker = (plain - masked)[:, 5:75].mean()
    assert darker > 10 and darker > 3 * abs((plain - masked)[:, 85:155].mean())  # right: fewer boxes only
    # OpenCV as the oracle: keep what stands outside the left half of the 160x120 frame.
    contour = (np.array(left, np.float32) * np.float32([160, 120])).reshape(-1, 1, 2)

    def side(det: dict[str, Any]) -> float:  # > 0 inside the mask, < 0 outside, 0 on its edge
        x1, _, x2, y2 = det["box"]
        return cv2.pointPolygonTest(contour, ((x1 + x2) / 2, min(y2, 120 - 1e-3)), False)

    # A foot point on the mask's edge (a box as wide as the frame) may go either way.
    expected = [[d for d in frame if side(d) < 0] for frame in found["plain"]]
    assert [[d for d in frame if side(d) != 0] for frame in found["masked"]] == expected
    # The zone of the same polygon: listed by the detections standing in it, by no other.
    plain = [d for frame in found["plain"] for d in frame if side(d) != 0]
    assert [d.get("zones") == ["left"] for d in plain] == [side(d) > 0 for d in plain]
    assert any(d.get("zones") for d in plain) and not all(d.get("zones") for d in plain)
    # masked, what is left stands outside the zone: zones follow the kept boxes, not the dropped
    assert not any(d.get("zones") for frame in found["masked"] for d in frame if side(d) != 0)
    assert sum(map(len, expected)) > 0 and sum(map(len, found["plain"])) > sum(map(len, expected))


def test_tracking_gives_still_objects_one_id_and_events_when_they_come_and_go(
    tiny_models: dict[str, Path], video_file: Path, tmp_path: Path, config_file: Any, cli: Any, jsonl: Any
) -> None:
    """A folder of the same frame four times, then another frame twice: the objects of the
    first frame get ids on its second copy (min_hits 2) and keep them; with max_lost_s 0,
    those the other frame does not have end on its first copy; those that move into or out
    of a zone there get an update; at the end of the folder, those still followed end in a
    last, final record."""
    folder = tmp_path / "images"
    folder.mkdir()
    first, other = _frame(video_file, 0), _frame(video_file, 11)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), first if i < 4 else other)
    out = tmp_path / "out.jsonl"
    config = config_file(
        f"model: {{path: {tiny_models['det']}}}\n"
        f"source: {{type: opencv, input: {folder}}}\n"
        "track: {max_lost_s: 0, start_conf: 0, zone_hits: 1}\n"
        "zones: {left: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}\n"
        f"sinks: [{{type: jsonl, path: {out}}}]\n"
    )
    proc = cli("run", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    records = jsonl(out)
    assert len(records) == 7 and len(records[0]["detections"]) > 1
    assert all("track_id" not in d for d in records[0]["detections"]) and "events" not in records[0]
    ids = [[d["track_id"] for d in r["detections"]] for r in records[1:4]]
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == len(ids[0])  # one id per object, kept
    new = records[1]["events"]
    assert [e["type"] for e in new] == ["new"] * len(ids[0]) and [e["id"] for e in new] == ids[0]
    for event, det in zip(new, records[1]["detections"], strict=True):
        assert (event["label"], event["box"], event["start"]) == (det["label"], det["box"], records[0]["ts"])
    assert "events" not in records[2] and "events" not in records[3]
    # the other frame: objects it does not have end at once, with their life so far
    still = {d.get("track_id") for d in records[4]["detections"]} & set(ids[0])
    ended = [e for e in records[4].get("events", []) if e["type"] == "end"]
    assert {e["id"] for e in ended} == set(ids[0]) - still and ended
    for event in ended:
        assert event["frames"] == 4
        assert (event["start"], event["end"]) == (records[0]["ts"], records[3]["ts"])
    # an object whose zones differ from those of its previous detection gets an update
    # (zone_hits 1: at once), listing them; no other object does
    last_seen: dict[int, tuple[int, list[str]]] = {}  # id -> (record, zones) of its last detection
    entered: dict[int, list[str]] = {}  # id -> the zones it stood in, in order
    for i, record in enumerate(records[:6]):
        events = record.get("events", [])
        started = {e["id"] for e in events if e["type"] == "new"}
        changed = {}
        for det in record["detections"]:
            if "track_id" in det:
                track_id, zones = det["track_id"], det.get("zones", [])
                if track_id not in started and zones != last_seen[track_id][1]:
                    changed[track_id] = zones
                last_seen[track_id] = (i, zones)
                entered.setdefault(track_id, []).extend(z for z in zones if z not in entered[track_id])
        assert {e["id"]: e["zones"] for e in events if e["type"] == "update"} == changed
        for event in (e for e in events if e["type"] == "end"):
            assert event["zones"] == entered[event["id"]]
    assert any(e["type"] == "update" for r in records for e in r.get("events", []))
    # the folder ended: every object still followed ends in a last record without detections,
    # at the time of its last detection
    final = records[6]
    assert final["final"] is True and final["frame"] == 6 and final["detections"] == []
    assert final["ts"] >= records[5]["ts"]
    gone = {e["id"] for r in records[:6] for e in r.get("events", []) if e["type"] == "end"}
    assert [e["type"] for e in final["events"]] == ["end"] * len(final["events"])
    assert {e["id"] for e in final["events"]} == set(last_seen) - gone
    for event in final["events"]:
        i, _ = last_seen[event["id"]]
        assert event["end"] == records[i]["ts"] and event["zones"] == entered[event["id"]]
    # --track from the flags reaches the config: a classifier refuses it, naming the flag
    proc = cli("run", "--model", str(tiny_models["cls"]), "--source", str(folder), "--track")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("--track: tracking needs a detector; the model is a classify model")
