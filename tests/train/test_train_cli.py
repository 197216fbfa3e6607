"""`edgecnn train`: the command end to end, and its errors (one line, exit 2)."""

from __future__ import annotations

import json
import logging
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
        (
            ["--model", "tiny_yolo_v3_test", "--resize", "crop"],
            "--resize crop: tiny_yolo_v3_test is a detector",
        ),
        (["--resize", "fill"], "'fill' is not one of"),
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
    assert not (tmp_path / "r").exists()  # nothing written


def test_interruption_messages_say_what_is_kept_and_how_to_go_on(tmp_path: Path) -> None:
    from edgecnn.train.fit import _Saved

    run = tmp_path / "run"
    assert _Saved(run, epochs=5).interrupted() == (
        f"before the first epoch ended: nothing of this run is kept in {run}"
    )
    assert _Saved(run, epochs=5, done=1, best_epoch=1).interrupted() == (
        f"in epoch 2 of 5: {run} keeps epoch 1 ({run / 'model.keras'}: best epoch 1); "
        f"continue with `edgecnn train --out {run} --resume`"
    )
    assert "keeps epochs 1-3 " in _Saved(run, epochs=5, done=3, best_epoch=2).interrupted()
    # --val-every 5: no model.keras yet, so none is named
    assert "keeps epochs 1-3 (not validated yet); continue" in _Saved(run, epochs=9, done=3).interrupted()
    after = _Saved(run, Path("d.yaml"), epochs=5, done=5, best_epoch=4, finished=True).interrupted()
    model = run / "model.keras"
    assert after.startswith(f"after the last epoch: {model} is the trained model (best epoch 4)")
    assert after.endswith(f"`edgecnn eval {run / 'model.keras'} --data d.yaml`")


@pytest.mark.slow
@pytest.mark.tf
def test_resize_crop_trains_a_classifier_whose_model_carries_it(cls_data: Path, tmp_path: Path) -> None:
    """--resize crop (Edge Impulse's "fit shortest axis"): the run's spec says crop, so eval,
    quantize and the board bring frames to the input the way training did."""
    from edgecnn.runtime.spec import ModelSpec

    run = tmp_path / "run"
    argv = ["train", "--data", str(cls_data), "--model", "lenet_test", "--imgsz", "32", "--epochs", "1"]
    argv += ["--batch", "8", "--resize", "crop", "--out", str(run)]
    result = runner.invoke(app, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ModelSpec.load(run / "spec.json").input.resize == "crop"
    assert json.loads((run / "train_config.json").read_text())["resize"] == "crop"  # kept by --resume


@pytest.mark.slow
@pytest.mark.tf
def test_ctrl_c_says_how_to_resume_and_resume_finishes_the_run(
    cls_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgecnn.train.loop import Trainer

    run = tmp_path / "run"
    real_epoch = Trainer.train_epoch
    calls = []

    def second_epoch_interrupted(self: Trainer, *args: object, **kwargs: object) -> dict[str, float]:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of epoch 2
        return real_epoch(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_epoch", second_epoch_interrupted)
    monkeypatch.chdir(cls_data.parent)  # --data relative to where the run starts ...
    argv = ["train", "--data", cls_data.name, "--model", "lenet_test", "--imgsz", "32", "--epochs", "3"]
    result = runner.invoke(app, [*argv, "--batch", "8", "--out", str(run)], catch_exceptions=False)
    assert result.exit_code == 130
    assert result.stderr.splitlines()[-1] == (
        f"edgecnn: interrupted: in epoch 2 of 3: {run} keeps epoch 1 ({run / 'model.keras'}: best epoch 1); "
        f"continue with `edgecnn train --out {run} --resume`"
    )
    monkeypatch.setattr(Trainer, "train_epoch", real_epoch)
    monkeypatch.chdir(tmp_path)  # ... and the resume from another working directory
    again = runner.invoke(app, ["train", "--out", str(run), "--resume"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert json.loads((run / "train_state.json").read_text())["epoch"] == 3


def test_resume_names_a_data_yaml_that_is_gone(tmp_path: Path) -> None:
    # Runs before the path was stored absolute kept `--data` as typed: resumed from another
    # directory, the error was "/data.yaml: file not found", not naming train_config.json.
    from edgecnn.errors import UserError
    from edgecnn.train import TrainConfig, train

    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(TrainConfig(data=Path("data/d.yaml"), out=run).model_dump_json())
    (run / "train_state.json").write_text('{"epoch": 1, "best_epoch": 1, "best": 0.5, "finished": false}')
    for name in ("last.npz", "spec.json"):
        (run / name).write_bytes(b"")
    with pytest.raises(UserError) as err:
        train(TrainConfig(out=run, resume=True))
    assert str(err.value) == (
        f"--resume: the run in {run} trains on data/d.yaml (train_config.json), which is not there "
        "(moved, or a path relative to another working directory?)"
    )


@pytest.mark.slow
@pytest.mark.tf
def test_resume_with_more_epochs_trains_the_run_on(
    cls_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    argv = ["train", "--data", str(cls_data), "--model", "lenet_test", "--imgsz", "32", "--epochs", "1"]
    first = runner.invoke(app, [*argv, "--batch", "8", "--out", str(run)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    with caplog.at_level(logging.INFO, logger="edgecnn.train.fit"):
        more = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert more.exit_code == 0, more.output
    assert f"resuming {run} at epoch 2: training on to 2 epochs instead of 1" in caplog.text
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())] == [1, 2]
    state = json.loads((run / "train_state.json").read_text())
    assert state["epoch"] == 2 and state["finished"] is True
    assert json.loads((run / "train_config.json").read_text())["epochs"] == 2  # a later --resume knows
    for epochs in ("2", "1"):
        again = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", epochs])
        assert again.exit_code == 2
        assert again.stderr.splitlines() == [
            f"edgecnn: error: --epochs {epochs}: the run in {run} has trained 2 epochs already; "
            "pass more than 2 to train it on"
        ]


def _fake_run(run: Path, epochs: int, done: int, finished: bool) -> None:
    from edgecnn.train import TrainConfig

    run.mkdir()
    config = TrainConfig(data=Path("data/d.yaml"), out=run, epochs=epochs, patience=3)
    (run / "train_config.json").write_text(config.model_dump_json())
    state = {"epoch": done, "best_epoch": 1, "best": 0.5, "finished": finished}
    (run / "train_state.json").write_text(json.dumps(state))
    for name in ("last.npz", "spec.json"):
        (run / name).write_bytes(b"")


def test_resume_epochs_that_cannot_be_trained_are_one_line(tmp_path: Path) -> None:
    from edgecnn.errors import UserError
    from edgecnn.train import TrainConfig, train

    cases = [
        ((5, 5, True), {}, "is finished (5 epochs); nothing to resume (--resume --epochs N, N > 5, trains"),
        ((10, 4, False), {"epochs": 3}, "--epochs 3: the run in {run} has trained 4 epochs already"),
        ((10, 4, True), {"epochs": 20}, "stopped early at epoch 4 of 10 (no better validation for 3 epochs)"),
        ((10, 4, False), {"epochs": 20}, "trains on data/d.yaml (train_config.json), which is not there"),
    ]
    for k, (shape, extra, message) in enumerate(cases):
        run = tmp_path / f"run{k}"
        _fake_run(run, *shape)
        with pytest.raises(UserError) as err:  # the last one got past the epoch checks to the data
            train(TrainConfig(out=run, resume=True, **extra))
        assert message.format(run=run) in str(err.value)
