"""Centre crop (``resize: crop``, the classifier convention) and :func:`fit_to_input`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecnn.postprocess.letterbox import RESIZE_MODES, center_crop, fit_to_input, letterbox, stretch


def ultralytics_center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Ultralytics' ``CenterCrop.__call__`` (ultralytics/data/augment.py), for a square size."""
    imh, imw = image.shape[:2]
    m = min(imh, imw)
    top, left = (imh - m) // 2, (imw - m) // 2
    return cv2.resize(image[top : top + m, left : left + m], (size, size), interpolation=cv2.INTER_LINEAR)


def _image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w, channels) if channels else (h, w)
    return cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (5, 5), 0).reshape(shape)


@pytest.mark.parametrize(("h", "w"), [(480, 640), (640, 480), (224, 224), (37, 211), (1, 9), (101, 100)])
@pytest.mark.parametrize("size", [224, 32])
def test_equals_ultralytics_center_crop_on_square_inputs(h: int, w: int, size: int) -> None:
    image = _image(h, w)
    got, _ = center_crop(image, size, size)
    np.testing.assert_array_equal(got, ultralytics_center_crop(image, size))


@pytest.mark.parametrize(("h", "w"), [(480, 640), (640, 480), (300, 300), (33, 500)])
def test_crop_keeps_the_aspect_ratio_and_maps_back_to_the_centre(h: int, w: int) -> None:
    image = _image(h, w, channels=0)
    out, info = center_crop(image, 96, 64)
    assert out.shape == (64, 96) and out.flags.c_contiguous
    # The input's corners map to a centred region of the frame with (nearly) the input's shape.
    x1, y1, x2, y2 = info.to_source(np.array([[0, 0, 96, 64]]), clip=False)[0]
    assert (x2 - x1) / (y2 - y1) == pytest.approx(96 / 64, rel=0.05)
    assert x1 >= 0 and y1 >= 0 and x2 <= w + 1e-3 and y2 <= h + 1e-3
    assert x1 == pytest.approx(w - x2, abs=1.0) and y1 == pytest.approx(h - y2, abs=1.0)
    assert min(x1, y1) == pytest.approx(0.0, abs=1e-3)  # one side kept whole
    # And a box drawn in the frame lands where the crop put its pixels.
    box = np.array([[10.0, 5.0, 50.0, 40.0]])
    np.testing.assert_allclose(info.to_input(info.to_source(box)), box, atol=1e-3)


def test_a_bright_square_in_the_middle_fills_the_input() -> None:
    frame = np.zeros((360, 640), np.uint8)
    frame[:, 140:500] = 255  # the central 360x360 square
    out, _ = center_crop(frame, 64, 64)
    assert out.min() == 255  # the dark borders were cut off, not scaled in


def test_fit_to_input_dispatches_by_name() -> None:
    image = _image(50, 80)
    for mode, function in zip(RESIZE_MODES, (letterbox, stretch, center_crop), strict=True):
        got, info = fit_to_input(image, mode, 32, 32)
        want, want_info = function(image, 32, 32)
        np.testing.assert_array_equal(got, want)
        assert info == want_info
    with pytest.raises(ValueError, match="unknown resize mode 'fill'"):
        fit_to_input(image, "fill", 32, 32)
    with pytest.raises(ValueError, match="cannot crop an empty frame"):
        center_crop(np.zeros((0, 5, 3), np.uint8), 8, 8)
