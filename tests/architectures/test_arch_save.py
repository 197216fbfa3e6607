"""Tiny variants round-trip through ``.keras`` files and ``get_config`` without custom objects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgecnn.architectures import build_model, get_model_info, list_models

pytestmark = pytest.mark.tf

TEST_VARIANTS = [info.name for info in list_models(include_test=True) if info.test]


@pytest.mark.parametrize("name", TEST_VARIANTS)
def test_save_and_load_round_trip(
    name: str,
    tmp_path: Path,
    random_images: Callable[..., np.ndarray],
    forward: Callable[..., list[np.ndarray]],
    calibrate_batch_norm: Callable[..., None],
) -> None:
    import keras

    info = get_model_info(name)
    model = build_model(name, num_classes=4)
    images = random_images(info, 4)
    calibrate_batch_norm(model, images)
    before = forward(model, images)
    assert all(np.ptp(out) > 1e-2 for out in before)  # outputs that a broken load would change

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: stock layers only
    assert loaded.name == name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    after = forward(loaded, images)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    clone = keras.Model.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    assert [tuple(t.shape) for t in clone.outputs] == [tuple(t.shape) for t in model.outputs]
