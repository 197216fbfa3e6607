"""A model converted elsewhere (no edgecnn metadata) runs in ``run``, ``eval`` and ``bench``
when its settings are given as flags, and gives the same results as the same model with its
spec embedded. ``det_plain`` is the tiny detector's bytes without the metadata."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgecnn.cli._specflags import FLAGS, with_spec_flags
from edgecnn.runtime.resolve import SETTING_FLAGS

ANCHORS = "10,14 23,27; 37,58 81,82"  # DET_ANCHORS of the tiny detector
DET_FLAGS = ["--task", "detect", "--labels", "person,car", "--anchors", ANCHORS, "--strides", "8,16"]
DET_FLAGS += ["--mean", "0", "--std", "255,255,255"]  # the defaults, given as run's list flags
CLS_FLAGS = ["--task", "classify", "--labels", "cat,dog,bird"]


def test_the_flags_are_the_settings_resolve_spec_names() -> None:
    # Thresholds have each command's own flags (run --conf, eval --conf ...), not these.
    assert {k: v for k, v in SETTING_FLAGS.items() if k not in ("conf", "iou", "max_det")} == {
        name: _flag_name(annotation) for name, annotation in FLAGS.items()
    }


def _flag_name(annotation: Any) -> str:
    option = annotation.__metadata__[0]
    return option.default if isinstance(option.default, str) else option.param_decls[0]


def test_with_spec_flags_collects_the_given_flags() -> None:
    seen: list[dict[str, Any]] = []

    @with_spec_flags
    def command(model: str, threads: int = 1, spec_settings: dict[str, Any] | None = None) -> None:
        seen.append(spec_settings or {})

    names = list(__import__("inspect").signature(command).parameters)
    assert names == ["model", "threads", *FLAGS]
    command("m.tflite", task="detect", labels="a,b", anchors=None)
    assert seen == [{"task": "detect", "labels": "a,b"}]


@pytest.mark.slow
def test_run_with_flags_equals_the_embedded_spec(
    tiny_models: dict[str, Path],
    video_file: Path,
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess],
    jsonl: Any,
) -> None:
    common = ["--source", str(video_file), "--max-frames", "4", "--conf", "0.2", "--iou", "0.5"]
    common += ["--max-det", "50"]  # the embedded spec's max_det
    detections = {}
    for name, flags in (("det", []), ("det_plain", DET_FLAGS)):
        out = tmp_path / f"{name}.jsonl"
        proc = cli("run", "--model", str(tiny_models[name]), *common, "--jsonl", str(out), *flags)
        assert proc.returncode == 0, proc.stderr
        detections[name] = [(r["frame"], r["detections"]) for r in jsonl(out)]
    assert detections["det_plain"] == detections["det"] and any(d for _, d in detections["det"])

    plain = tiny_models["det_plain"]
    proc = cli("run", "--model", str(plain), "--source", str(video_file), "--task", "detect")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"edgecnn: error: --model: {plain} has no edgecnn or Ultralytics metadata (Ultralytics exports "
        "run as they come): pass --labels and --anchors"
    )
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {tiny_models['det']}\nsource: {{type: opencv, input: {video_file}}}\n")
    proc = cli("run", "--config", str(config), "--task", "detect")
    assert proc.returncode == 2 and "--task cannot be combined with --config" in proc.stderr


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgecnn.data.synth import write_synth_dataset

    return write_synth_dataset(tmp_path_factory.mktemp("shapes"), "detect", n=12, imgsz=64, num_classes=2)


@pytest.mark.slow
def test_eval_with_flags_equals_the_embedded_spec(
    tiny_models: dict[str, Path], shapes_data: Path, cli: Callable[..., subprocess.CompletedProcess]
) -> None:
    # The synthetic set's classes are circle and square: --labels overrides the embedded
    # labels for "det", and gives them (with the rest) to "det_plain".
    labels = ["--labels", "circle,square"]
    reports = {}
    for name, flags in (("det", labels), ("det_plain", [*DET_FLAGS, *labels])):
        args = ["--data", str(shapes_data), "--json", "--conf", "0.01", *flags]
        proc = cli("eval", str(tiny_models[name]), *args)
        assert proc.returncode == 0, proc.stderr
        reports[name] = json.loads(proc.stdout)
    assert reports["det_plain"] == reports["det"]
    assert list(reports["det"]["per_class"]) == ["circle", "square"] and reports["det"]["num_predictions"] > 0

    proc = cli("eval", str(tiny_models["det_plain"]), "--data", str(shapes_data))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"edgecnn: error: {tiny_models['det_plain']} has no edgecnn or Ultralytics metadata (Ultralytics "
        "exports run as they come): pass --task and --labels"
    )


@pytest.mark.slow
def test_bench_with_flags_times_every_stage(
    tiny_models: dict[str, Path], cli: Callable[..., subprocess.CompletedProcess]
) -> None:
    stages = {}
    for name, flags in (("cls_plain", []), ("cls_plain+flags", CLS_FLAGS)):
        proc = cli("bench", str(tiny_models["cls_plain"]), "--runs", "3", "--warmup", "0", "--json", *flags)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        stages[name] = (result["task"], sorted(result["results"][0]["stages"]))
    assert stages["cls_plain"] == (None, ["invoke"])
    assert stages["cls_plain+flags"] == ("classify", ["invoke", "postprocess", "preprocess"])
