"""Every registered model trains: each tiny ``*_test`` variant builds, takes two steps, saves and loads.

Parametrised over the registry, so a new family is covered without editing this file. Int8
conversion is tested with the architectures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecnn.architectures import list_models

pytestmark = [pytest.mark.slow, pytest.mark.tf]

TEST_VARIANTS = [info for info in list_models(include_test=True) if info.test]


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 train + 4 val images per task, 64 px, 2 classes."""
    from edgecnn.data.synth import write_synth_dataset

    root = tmp_path_factory.mktemp("registry")
    return {
        task: write_synth_dataset(root / task, task, n=8, imgsz=64, num_classes=2, seed=6, ratios=(0.5, 0.5))
        for task in ("detect", "classify")
    }


def test_every_family_has_a_test_variant() -> None:
    families = {info.family for info in list_models()}
    assert families == {info.family for info in TEST_VARIANTS}


@pytest.mark.parametrize("info", TEST_VARIANTS, ids=lambda info: info.name)
def test_variant_trains_saves_and_loads(info, small_sets: dict[str, Path], tmp_path: Path) -> None:
    import keras

    from edgecnn.evaluation import load_predictor
    from edgecnn.train import TrainConfig, train

    out = tmp_path / "run"
    result = train(
        TrainConfig(
            data=small_sets[info.task], model=info.name, epochs=1, batch=2, out=out, anchors="default"
        )
    )
    assert len(result.history) == 1 and np.isfinite(result.history[0]["loss"])
    assert json.loads((out / "train_state.json").read_text())["finished"]
    spec = result.spec
    assert spec.task == info.task and spec.input.channels == info.channels
    # The saved model loads and gives the in-memory EMA model's outputs.
    model = keras.models.load_model(out / "model.keras")
    size = spec.input.height, spec.input.width, spec.input.channels
    x = np.random.default_rng(0).uniform(-1, 1, (2, *size)).astype("float32")
    saved = load_predictor(out / "model.keras").predict_batch(x)
    direct = model(x, training=False)
    outputs = direct if isinstance(direct, list | tuple) else [direct]
    flat = saved if isinstance(saved, list) else [saved]
    assert sorted(float(np.asarray(o).sum()) for o in outputs) == pytest.approx(
        sorted(float(o.sum()) for o in flat), rel=1e-4, abs=1e-4
    )
