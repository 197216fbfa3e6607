"""The training loop: run directory, loading, repeatability, resume, early stopping, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.tf]

RUN_FILES = {
    "model.keras",
    "spec.json",
    "labels.txt",
    "metrics.json",
    "history.json",
    "curves.png",
    "train_batch.jpg",
    "val_pred.jpg",
    "pr_curve.png",
    "confusion_matrix.png",
    "train_config.json",
    "last.npz",
    "train_state.json",
}


def _weights(run: Path) -> list[np.ndarray]:
    with np.load(run / "last.npz") as data:
        return [data[k] for k in sorted(data.files)]


def _short(data: Path, out: Path, **kw):
    from edgecnn.train import TrainConfig

    base = dict(data=data, model="tiny_yolo_v3_test", epochs=2, batch=8, out=out, seed=1, lr=5e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_run_directory_contents(trained_detector: Path, det_data: Path) -> None:
    from edgecnn.runtime.spec import ModelSpec

    assert {p.name for p in trained_detector.iterdir()} >= RUN_FILES
    spec = ModelSpec.load(trained_detector / "spec.json")
    assert spec.task == "detect" and spec.output.layout == "yolo_v3" and spec.output.strides == [16, 32]
    assert spec.input.width == spec.input.height == 64
    assert (trained_detector / "labels.txt").read_text().splitlines() == spec.labels == ["circle", "square"]
    # Anchors come from k-means on the training boxes, not the variant's defaults.
    from edgecnn.architectures import get_model_info

    assert spec.output.anchors != get_model_info("tiny_yolo_v3_test").default_anchors(64)
    history = json.loads((trained_detector / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert all({"loss", "box", "obj", "cls", "lr", "val", "fitness"} <= set(r) for r in history)
    assert history[-1]["loss"] < history[0]["loss"]  # the loss goes down
    metrics = json.loads((trained_detector / "metrics.json").read_text())
    assert {"map50", "map50_95", "per_class", "task", "split"} <= set(metrics)
    for picture in ("curves.png", "pr_curve.png", "confusion_matrix.png"):
        assert (trained_detector / picture).read_bytes().startswith(b"\x89PNG"), picture
    config = json.loads((trained_detector / "train_config.json").read_text())
    assert config["model"] == "tiny_yolo_v3_test" and config["imgsz"] == 64


def test_saved_model_loads_with_plain_keras(trained_detector: Path) -> None:
    """model.keras needs no custom objects: a process that never imports edgecnn loads it."""
    code = (
        "import sys, keras, numpy as np\n"
        f"m = keras.models.load_model({str(trained_detector / 'model.keras')!r})\n"
        "x = np.linspace(0, 1, 64 * 64 * 3, dtype='float32').reshape(1, 64, 64, 3)\n"
        "out = m.predict(x, verbose=0)\n"
        "assert 'edgecnn' not in sys.modules\n"
        "print([float(np.asarray(o).sum()) for o in out])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sums = json.loads(proc.stdout.strip().splitlines()[-1])

    from edgecnn.evaluation import load_predictor

    x = np.linspace(0, 1, 64 * 64 * 3, dtype="float32").reshape(1, 64, 64, 3)
    here = load_predictor(trained_detector / "model.keras").predict_batch(x)
    assert sums == pytest.approx([float(o.sum()) for o in here], rel=1e-4)


@pytest.fixture(scope="module")
def reference_run(det_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgecnn.train import train

    out = tmp_path_factory.mktemp("ref") / "a"
    train(_short(det_data, out))
    return out


def test_same_seed_gives_identical_weights_and_another_seed_does_not(
    reference_run: Path, det_data: Path, tmp_path: Path
) -> None:
    from edgecnn.train import train

    train(_short(det_data, tmp_path / "b"))
    for a, b in zip(_weights(reference_run), _weights(tmp_path / "b"), strict=True):
        np.testing.assert_array_equal(a, b)
    train(_short(det_data, tmp_path / "c", seed=2))
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(_weights(reference_run), _weights(tmp_path / "c"), strict=True)
    )


class _Interrupt:
    """Stops the run after ``epochs`` epochs, as Ctrl-C would (checkpoint already written)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, record: dict) -> None:
        if record["epoch"] >= self.epochs:
            raise KeyboardInterrupt


def test_resume_continues_where_the_run_stopped(reference_run: Path, det_data: Path, tmp_path: Path) -> None:
    from edgecnn.errors import UserError
    from edgecnn.train import TrainConfig, train

    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        train(_short(det_data, out), callbacks=[_Interrupt(1)])
    state = json.loads((out / "train_state.json").read_text())
    assert state["epoch"] == 1 and not state["finished"]
    result = train(TrainConfig(out=out, resume=True))
    assert [r["epoch"] for r in result.history] == [1, 2]
    # Weights, EMA weights and optimiser state (step count, moments) equal the uninterrupted run's.
    for a, b in zip(_weights(reference_run), _weights(out), strict=True):
        np.testing.assert_array_equal(a, b)
    ref_history = json.loads((reference_run / "history.json").read_text())
    assert [r["loss"] for r in result.history] == [r["loss"] for r in ref_history]
    with pytest.raises(UserError, match="finished"):
        train(TrainConfig(out=out, resume=True))
    with pytest.raises(UserError, match="already holds a run"):
        train(_short(det_data, out))


def test_early_stopping_keeps_the_best_epoch(cls_data: Path, tmp_path: Path) -> None:
    """With a vanishing learning rate nothing improves after epoch 1: patience 2 stops at epoch 3."""
    from edgecnn.train import TrainConfig, train

    config = TrainConfig(
        data=cls_data,
        model="lenet_test",
        epochs=20,
        batch=8,
        lr=1e-12,
        patience=2,
        ema=False,
        out=tmp_path / "e",
    )
    result = train(config)
    assert result.stopped_early
    assert result.epochs_run == 3 and result.best_epoch == 1
    assert [r.get("best", False) for r in result.history] == [True, False, False]
    assert json.loads((tmp_path / "e" / "train_state.json").read_text())["finished"]


def test_imagenet_weights_offline_is_one_line_exit_2(
    cls_data: Path, tmp_path: Path, run_cli: Callable
) -> None:
    env = {
        **os.environ,
        "KERAS_HOME": str(tmp_path / "keras"),  # no cached weights
        "https_proxy": "http://127.0.0.1:9",  # nothing listens: fails at once, downloads nothing
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    argv = [
        "train",
        "--data",
        str(cls_data),
        "--model",
        "mobilenet_v2_test",
        "--weights",
        "imagenet",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
    ]
    proc = run_cli(argv, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgecnn: error:")]
    assert len(errors) == 1 and "cannot download the ImageNet weights" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert "Warning" not in proc.stderr, proc.stderr  # Keras' input-size warning says nothing here


def test_imagenet_weights_only_for_mobilenets(cls_data: Path, tmp_path: Path) -> None:
    from edgecnn.errors import UserError
    from edgecnn.train import TrainConfig, train

    with pytest.raises(UserError, match="only MobileNet backbones"):
        train(TrainConfig(data=cls_data, model="lenet_test", weights="imagenet", out=tmp_path / "x"))
    assert not (tmp_path / "x").exists()
