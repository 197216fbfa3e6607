"""Fixtures for the training and model-evaluation tests: tiny synthetic datasets and short runs.

Training here is slow (2 CPU cores), so every run uses 64 px (or smaller) inputs, a handful
of images and the registry's tiny ``*_test`` variants, and the runs that several tests
inspect are session-scoped. Keras state is cleared after each test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgecnn.data.synth import write_synth_dataset


def _run_cli(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgecnn", *argv], capture_output=True, text=True, timeout=600, **kwargs
    )


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_cli(argv, **kwargs)``: ``edgecnn ARGV`` in a child process (real exit code and stderr)."""
    return _run_cli


@pytest.fixture(autouse=True)
def _clear_keras() -> Iterator[None]:
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


@pytest.fixture(scope="session")
def det_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic detection images at 64 px, 2 classes: 16 train, 8 val. Its data.yaml."""
    root = tmp_path_factory.mktemp("det")
    return write_synth_dataset(root, "detect", n=24, imgsz=64, num_classes=2, seed=11, ratios=(2 / 3, 1 / 3))


@pytest.fixture(scope="session")
def cls_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic classification images at 32 px, 3 classes: 16 train, 8 val. Its data.yaml."""
    root = tmp_path_factory.mktemp("cls")
    return write_synth_dataset(root, "classify", n=24, imgsz=32, num_classes=3, seed=4, ratios=(2 / 3, 1 / 3))


@pytest.fixture(scope="session")
def trained_detector(det_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of ``tiny_yolo_v3_test`` trained for 4 epochs (no augmentation) on :func:`det_data`."""
    from edgecnn.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "det"
    config = TrainConfig(
        data=det_data, model="tiny_yolo_v3_test", epochs=4, batch=8, out=out, lr=5e-3, augment=False
    )
    train(config)
    return out


@pytest.fixture(scope="session")
def trained_classifier(cls_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of ``mini_resnet_test`` (32 px) trained for 3 epochs on :func:`cls_data`."""
    from edgecnn.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "cls"
    train(TrainConfig(data=cls_data, model="mini_resnet_test", imgsz=32, epochs=3, batch=8, out=out))
    return out


@pytest.fixture(scope="session")
def overfit_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic detection images at 96 px, 2 classes, all in the train split. Its data.yaml.

    96 px, not 64: at 64 px the two grids are 4x4 and 2x2 cells, too coarse to hold every box
    of these busy images (the same run plateaued at mAP50 0.79 there, 0.99 at 96 px)."""
    root = tmp_path_factory.mktemp("overfit")
    return write_synth_dataset(root, "detect", n=8, imgsz=96, num_classes=2, seed=3, ratios=(1.0, 0.0))


@pytest.fixture(scope="session")
def overfit_detector(overfit_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of a small real detector (``tiny_yolo_v3`` at width 0.25, 96 px) over-fitted
    to :func:`overfit_data` (augmentation off), validated on its own training images."""
    from edgecnn.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "overfit"
    config = TrainConfig(
        data=overfit_data,
        model="tiny_yolo_v3",
        width=0.25,
        imgsz=96,
        epochs=100,
        batch=2,
        lr=5e-3,
        augment=False,
        val_split="train",
        val_every=10,
        out=out,
    )
    train(config)
    return out
