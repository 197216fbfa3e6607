"""`edgecnn train`: the command end to end, and its errors (one line, exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import edgecnn.cli.train_cmd  # noqa: F401  registers `train` until edgecnn.cli imports it
from edgecnn.cli.app import app

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.tf
def test_train_command_writes_a_run_and_prints_a_summary(det_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["train", "--data", str(det_data), "--model", "tiny_yolo_v3_test", "--epochs", "2", "--batch", "8"]
    result = runner.invoke(
        app, [*argv, "--out", str(out), "--no-augment", "--seed", "3"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert str(out / "model.keras") in line and "mAP50" in line and "best epoch" in line
    config = json.loads((out / "train_config.json").read_text())
    assert config["augment"] is False and config["seed"] == 3 and config["epochs"] == 2
    again = runner.invoke(app, ["train", "--out", str(out), "--resume"], catch_exceptions=False)
    assert again.exit_code == 2 and "finished" in again.output


def test_train_help_lists_the_options() -> None:
    result = runner.invoke(app, ["train", "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    for option in (
        "--data",
        "--model",
        "--imgsz",
        "--epochs",
        "--batch",
        "--out",
        "--seed",
        "--resume",
        "--lr",
        "--patience",
        "--no-augment",
        "--workers",
        "--weights",
        "--val-every",
    ):
        assert option in result.output, option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "tiny_yolo_v9"], "unknown model 'tiny_yolo_v9'"),
        (["--model", "lenet"], "lenet is a classify model but the dataset is for detect"),
        (["--model", "tiny_yolo_v3_test", "--imgsz", "70"], "must be a multiple of 32"),
        (["--aug", "fliplr"], "expected KEY=VALUE"),
        (["--aug", "nosuch=1"], "nosuch"),
        (["--data", "MISSING_SPLIT"], "val"),
        (["--resume"], "nothing to resume"),
        ([], None),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], message: str | None, det_data: Path, tmp_path: Path, run_cli: Callable
) -> None:
    if args == []:  # no --data at all
        argv = ["train", "--out", str(tmp_path / "r")]
        message = "pass --data"
    elif "--resume" in args:
        argv = ["train", *args, "--out", str(tmp_path / "empty")]
    elif "MISSING_SPLIT" in args:
        only_train = det_data.with_name("train_only.yaml")
        lines = det_data.read_text().splitlines()
        only_train.write_text("\n".join(ln for ln in lines if not ln.startswith("val")) + "\n")
        argv = ["train", "--data", str(only_train), "--out", str(tmp_path / "r")]
    else:
        argv = ["train", "--data", str(det_data), *args, "--out", str(tmp_path / "r")]
    proc = run_cli(argv)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]  # TensorFlow is not even imported
