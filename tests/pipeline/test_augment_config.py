"""The augmentation config (defaults pinned against the docs), the off preset, determinism,
colour jitter and classification augmentation."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edgecnn.data.augment import (
    AugmentConfig,
    augment_classification,
    augment_detection,
    hsv_jitter,
    random_affine_matrix,
)

ROOT = Path(__file__).resolve().parents[2]

DEFAULTS = {
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "degrees": 5.0,
    "translate": 0.1,
    "scale": 0.5,
    "shear": 0.0,
    "fliplr": 0.5,
    "flipud": 0.0,
    "mosaic": 0.5,
    "min_box_size": 2.0,
    "min_area_ratio": 0.1,
    "rotation_box_shrink": False,
}


def test_defaults_are_pinned_and_documented() -> None:
    assert AugmentConfig().model_dump() == DEFAULTS
    docs = (ROOT / "docs" / "training-data.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", docs, flags=re.MULTILINE))
    assert set(rows) == set(DEFAULTS), "docs/training-data.md must list every parameter"
    for name, value in DEFAULTS.items():
        documented = rows[name] == "true" if isinstance(value, bool) else float(rows[name])
        assert documented == value, f"docs say {name} = {rows[name]}, the code {value}"


def test_config_rejects_unknown_keys_and_out_of_range_values() -> None:
    with pytest.raises(ValidationError, match="extra"):
        AugmentConfig(hsv=0.1)
    with pytest.raises(ValidationError):
        AugmentConfig(fliplr=1.5)
    with pytest.raises(ValidationError):
        AugmentConfig(scale=1.0)  # a zoom of 0 would be possible


def test_off_preset_is_exact_identity() -> None:
    rng = np.random.default_rng(0)
    off = AugmentConfig.off()
    assert off.is_off and not AugmentConfig().is_off
    for shape in [(37, 53, 3), (40, 30)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        boxes = np.array([[0.5, 1.25, 20.0, 30.0], [10, 3, 11, 4], [0, 0, 53, 37]], np.float32)
        classes = np.array([2, 0, 1])
        out, out_boxes, out_classes = augment_detection(
            image, boxes, classes, off, np.random.default_rng(1), mosaic_source=lambda: 1 / 0
        )
        np.testing.assert_array_equal(out, image)
        np.testing.assert_array_equal(out_boxes, boxes)  # not even the 1-px box is dropped
        np.testing.assert_array_equal(out_classes, classes)
        np.testing.assert_array_equal(augment_classification(image, off, np.random.default_rng(1)), image)


def test_off_preset_with_a_larger_output_pads_like_letterbox() -> None:
    image = np.random.default_rng(0).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    out, boxes, _ = augment_detection(
        image,
        [[1, 2, 3, 4]],
        [0],
        AugmentConfig.off(),
        np.random.default_rng(0),
        out_size=(64, 48),
        pad_value=7,
    )
    expected = np.full((48, 64, 3), 7, np.uint8)
    expected[9:39, 11:52] = image  # (48 - 30) // 2, (64 - 41) // 2
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(boxes, [[12, 11, 14, 13]])


def _sample(seed: int, config: AugmentConfig):
    data = np.random.default_rng(99)
    image = data.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    others = [data.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(5)]
    rng = np.random.default_rng(seed)

    def source():
        k = int(rng.integers(len(others)))
        return others[k], np.array([[5, 5, 30, 30]], np.float32), np.array([k])

    return augment_detection(image, [[10, 10, 40, 40]], [9], config, rng, mosaic_source=source)


def test_same_seed_same_output_different_seed_different_output() -> None:
    config = AugmentConfig(mosaic=1.0, degrees=10, shear=2)
    first, again, other = _sample(3, config), _sample(3, config), _sample(4, config)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_affine_with_zero_parameters_is_identity_and_draws_all_the_same() -> None:
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    matrix = random_affine_matrix(rng_a, AugmentConfig.off(), (64, 48), (64, 48))
    assert np.array_equal(matrix, np.eye(3))
    random_affine_matrix(rng_b, AugmentConfig(), (64, 48), (64, 48))
    assert rng_a.random() == rng_b.random()  # same number of draws whatever the parameters


def test_hsv_value_gain_on_grey_and_colour() -> None:
    grey = np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5)
    config = AugmentConfig(**{**AugmentConfig.off().model_dump(), "hsv_v": 0.4})
    gains = np.random.default_rng(0).uniform(-1, 1, 3) * [0, 0, 0.4]
    out = hsv_jitter(grey, config, np.random.default_rng(0))
    np.testing.assert_array_equal(out, np.clip(grey * np.float32(1 + gains[2]), 0, 255).astype(np.uint8))
    colour = np.full((4, 4, 3), (40, 80, 200), np.uint8)  # BGR, an orange-red
    hue = AugmentConfig(**{**AugmentConfig.off().model_dump(), "hsv_h": 0.1})
    shifted = hsv_jitter(colour, hue, np.random.default_rng(2))
    shift = np.random.default_rng(2).uniform(-1, 1) * 0.1 * 180
    h_in = cv2.cvtColor(colour, cv2.COLOR_BGR2HSV)[0, 0, 0]
    h_out = cv2.cvtColor(shifted, cv2.COLOR_BGR2HSV)[0, 0, 0]
    assert abs(int(h_out) - int((h_in + shift) % 180)) <= 2
    # The same colour given as RGB is shifted the same way.
    rgb = hsv_jitter(colour[:, :, ::-1].copy(), hue, np.random.default_rng(2), color_order="RGB")
    np.testing.assert_array_equal(rgb, shifted[:, :, ::-1])


def test_colour_jitter_leaves_boxes_alone() -> None:
    config = AugmentConfig(**{**AugmentConfig.off().model_dump(), "hsv_h": 0.5, "hsv_s": 1.0, "hsv_v": 1.0})
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out, boxes, _ = augment_detection(image, [[1, 2, 30, 31]], [0], config, np.random.default_rng(0))
    assert not np.array_equal(out, image)
    np.testing.assert_array_equal(boxes, [[1, 2, 30, 31]])


def test_classification_flip_and_zoom() -> None:
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    flip = AugmentConfig(**{**AugmentConfig.off().model_dump(), "fliplr": 1.0})
    np.testing.assert_array_equal(
        augment_classification(image, flip, np.random.default_rng(0)), image[:, ::-1]
    )
    zoom = AugmentConfig(**{**AugmentConfig.off().model_dump(), "scale": 0.5})
    out = augment_classification(image, zoom, np.random.default_rng(0), out_size=(48, 48))
    assert out.shape == (48, 48, 3) and not np.array_equal(out[9:39, 4:44], image)


def test_grey_images_go_through_every_step() -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    config = AugmentConfig(mosaic=1.0, degrees=10, shear=3, flipud=0.5)

    def source():
        return grey[:30, :45], np.array([[2, 2, 20, 20]], np.float32), np.array([1])

    for seed in range(5):
        out, boxes, _ = augment_detection(
            grey,
            [[5, 5, 30, 30]],
            [0],
            config,
            np.random.default_rng(seed),
            out_size=(64, 48),
            mosaic_source=source,
        )
        assert out.shape == (48, 64) and out.dtype == np.uint8
        assert ((boxes >= 0) & (boxes <= [64, 48, 64, 48])).all()
    assert augment_classification(grey, config, rng, out_size=(32, 32)).shape == (32, 32)
