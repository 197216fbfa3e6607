"""``edgecnn data check``: the report, JSON output, --skip-bad, and one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from edgecnn.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_check_prints_format_task_counts_per_split(make_dataset) -> None:
    data_yaml = make_dataset("voc")
    result = runner.invoke(app, ["data", "check", str(data_yaml)], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "train: voc detect, 4 images, 6 boxes, 0 skipped"
    assert lines[2].split() == ["0", "cat", "2"] and lines[4].split() == ["2", "bird", "2"]
    assert "val: voc detect, 2 images, 2 boxes, 0 skipped" in lines
    # val (the first two images: cat and bird, then none) has no dog: named, as it cannot be scored
    assert lines[lines.index("val: voc detect, 2 images, 2 boxes, 0 skipped") + 5] == "  no boxes of: dog"


def test_check_json_for_chosen_splits(make_dataset) -> None:
    data_yaml = make_dataset("folders")
    result = runner.invoke(
        app, ["data", "check", str(data_yaml), "--split", "val", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert list(report["splits"]) == ["val"]
    assert report["splits"]["val"] == {
        "format": "folders",
        "task": "classify",
        "images": 2,
        "boxes": 0,
        "classes": {"cat": 1, "dog": 1, "bird": 0},
        "skipped": 0,
        "skipped_entries": [],
        "dropped": 0,
        "dropped_entries": [],
    }


def test_check_skip_bad_reports_the_skipped_entries(make_dataset) -> None:
    data_yaml = make_dataset("yolo")
    label = data_yaml.parent / "labels" / "train" / "a.txt"
    label.write_text(label.read_text() + "5 0.5 0.5 0.1 0.1\n")
    result = runner.invoke(app, ["data", "check", str(data_yaml), "--skip-bad", "--split", "train"])
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "train: yolo detect, 3 images, 4 boxes, 1 skipped"
    assert f"skipped: {label} (line 3): class 5 not in names" in result.output


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EDGECNN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, env=env)


def test_bad_data_exits_2_with_one_stderr_line(make_dataset) -> None:
    data_yaml = make_dataset("coco")
    json_path = data_yaml.parent / "annotations" / "instances_train.json"
    doc = json.loads(json_path.read_text())
    doc["annotations"][2]["bbox"] = [50, 40, 30, 20]
    json_path.write_text(json.dumps(doc))

    proc = _run("data", "check", str(data_yaml))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"edgecnn: error: {json_path} (annotation id 3): box [50, 40, 30, 20] (x, y, w, h) "
        "outside the 64x48 image (image id 3)"
    ]

    proc = _run("data", "check", str(data_yaml), "--skip-bad", "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["splits"]["train"]["skipped"] == 1
    assert "train split: skipped 1 bad entries" in proc.stderr  # the warning, on stderr


def test_bad_yaml_key_exits_2(tmp_path: Path) -> None:
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text("names: [a]\nvall: images/val\n")
    proc = _run("data", "check", str(data_yaml))
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1
    assert f"{data_yaml} (line 2): unknown key 'vall' (did you mean 'val'?)" in proc.stderr


def test_data_that_used_to_raise_exits_2_with_one_stderr_line(make_dataset) -> None:
    data_yaml = make_dataset("coco")
    json_path = data_yaml.parent / "annotations" / "instances_val.json"
    json_path.write_text("[" * 100_000 + "]" * 100_000)  # past the JSON decoder's recursion limit
    proc = _run("data", "check", str(data_yaml), "--split", "val")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [f"edgecnn: error: {json_path}: malformed JSON: nested too deeply"]

    data_yaml.write_text(data_yaml.read_text() + "test: /dev/zero\n")
    proc = _run("data", "check", str(data_yaml), "--split", "test")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        f"edgecnn: error: {data_yaml} (line 7): test path /dev/zero is a device, not a file or folder"
    ]
