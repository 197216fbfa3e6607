"""Quality bars: a detector and a classifier over-fit tiny training sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.tf]


def test_detector_overfits_eight_images(overfit_detector: Path) -> None:
    metrics = json.loads((overfit_detector / "metrics.json").read_text())
    assert metrics["split"] == "train"  # validated on its own training images
    assert metrics["map50"] >= 0.9, metrics
    history = json.loads((overfit_detector / "history.json").read_text())
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]


def test_classifier_overfits_its_training_images(tmp_path: Path) -> None:
    from edgecnn.data.synth import write_synth_dataset
    from edgecnn.train import TrainConfig, train

    data = write_synth_dataset(
        tmp_path / "d", "classify", n=24, imgsz=32, num_classes=3, seed=8, ratios=(1.0, 0.0)
    )
    config = TrainConfig(
        data=data,
        model="mini_resnet_test",
        epochs=60,
        batch=8,
        lr=3e-3,
        augment=False,
        val_split="train",
        val_every=10,
        out=tmp_path / "run",
    )
    result = train(config)
    assert result.metrics["accuracy"] >= 0.9, result.metrics
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.5 * losses[0]
