"""preprocess / preprocess_quantized against a straightforward reference implementation."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from edgecnn.postprocess.letterbox import center_crop, letterbox, stretch
from edgecnn.runtime.preprocessing import preprocess, preprocess_quantized, quantize
from edgecnn.runtime.spec import InputSpec


def reference(frame: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, object]:
    """The obvious order: colour conversion on the full frame, resize, float arithmetic."""
    image = frame[:, :, 0] if frame.ndim == 3 and frame.shape[2] == 1 else frame
    if spec.channels == 1:
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    else:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if spec.color_order == "RGB":
            image = np.ascontiguousarray(image[:, :, ::-1])
    if spec.resize == "letterbox":
        image, info = letterbox(image, spec.width, spec.height, pad_value=spec.pad_value)
    elif spec.resize == "crop":
        image, info = center_crop(image, spec.width, spec.height)
    else:
        image, info = stretch(image, spec.width, spec.height)
    x = image.astype(np.float32).reshape(spec.height, spec.width, spec.channels)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return x[None], info


SPECS = [
    InputSpec(width=64, height=64),
    InputSpec(width=96, height=64, color_order="BGR", pad_value=0),
    InputSpec(width=48, height=80, resize="stretch"),
    InputSpec(width=64, height=48, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)),
    InputSpec(width=32, height=32, mean=(127.5,), std=(127.5,)),
    InputSpec(width=28, height=28, channels=1),
    InputSpec(width=40, height=24, channels=1, resize="stretch", mean=(33.0,), std=(77.0,)),
    InputSpec(width=64, height=64, resize="crop"),
    InputSpec(width=48, height=32, resize="crop", color_order="BGR"),
    InputSpec(width=28, height=28, channels=1, resize="crop"),
]
FRAME_SHAPES = [(120, 160, 3), (64, 64, 3), (37, 201, 3), (90, 30, 4), (50, 70), (50, 70, 1)]


def _frame(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return cv2.GaussianBlur(frame, (5, 5), 0).reshape(shape)  # some structure, not only noise


@pytest.mark.parametrize(("spec", "shape"), list(itertools.product(SPECS, FRAME_SHAPES)))
def test_matches_the_reference_exactly(spec: InputSpec, shape: tuple[int, ...]) -> None:
    frame = _frame(shape, seed=len(shape) + shape[0])
    got, info = preprocess(frame, spec)
    want, want_info = reference(frame, spec)
    assert got.shape == (1, spec.height, spec.width, spec.channels) and got.dtype == np.float32
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    assert info == want_info


@pytest.mark.parametrize(
    ("spec", "scale", "zero_point", "dtype"),
    [
        (InputSpec(width=64, height=64), 1 / 255, -128, "int8"),  # the usual int8 model
        (InputSpec(width=64, height=64), 0.003921555820852518, -128, "int8"),  # the converter's float32 1/255
        (InputSpec(width=96, height=64, color_order="BGR"), 1 / 255, 0, "uint8"),
        (InputSpec(width=32, height=32, mean=(127.5,), std=(127.5,)), 0.0078125, 0, "int8"),
        (
            InputSpec(width=48, height=48, mean=(123.675, 116.28, 103.53), std=(58.4, 57.1, 57.4)),
            0.0186,
            14,
            "int8",
        ),
        (InputSpec(width=28, height=28, channels=1), 0.0042, -120, "int8"),
        (InputSpec(width=56, height=56, resize="crop"), 1 / 255, -128, "int8"),
    ],
)
def test_quantized_fast_path_is_exact(spec: InputSpec, scale: float, zero_point: int, dtype: str) -> None:
    for shape in FRAME_SHAPES:
        frame = _frame(shape, seed=shape[1])
        got, info = preprocess_quantized(frame, spec, scale, zero_point, dtype)
        want, want_info = reference(frame, spec)
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_array_equal(got, quantize(want, scale, zero_point, dtype))
        assert info == want_info


def test_hand_computed_pixels() -> None:
    frame = np.zeros((2, 4, 3), np.uint8)
    frame[:] = (10, 20, 30)  # B, G, R
    spec = InputSpec(width=4, height=4)  # letterbox: 4x2 frame -> rows 1..2, pad 114 above and below
    tensor, info = preprocess(frame, spec)
    np.testing.assert_allclose(tensor[0, 1, 0], [30 / 255, 20 / 255, 10 / 255], rtol=1e-6)  # RGB
    np.testing.assert_allclose(tensor[0, 0, 0], [114 / 255] * 3, rtol=1e-6)
    assert (info.scale_x, info.scale_y, info.pad_x, info.pad_y) == (1.0, 1.0, 0.0, 1.0)
    q, _ = preprocess_quantized(frame, spec, 1 / 255, -128, "int8")
    assert q[0, 1, 0].tolist() == [30 - 128, 20 - 128, 10 - 128] and q[0, 0, 0].tolist() == [114 - 128] * 3
    bgr, _ = preprocess(
        frame, InputSpec(width=4, height=2, color_order="BGR", mean=(10.0, 0.0, 0.0), std=(2.0, 4.0, 5.0))
    )
    np.testing.assert_allclose(bgr[0, 0, 0], [0.0, 5.0, 6.0])
    grey, _ = preprocess(frame, InputSpec(width=4, height=2, channels=1))
    want = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[0, 0] / 255
    assert grey.shape == (1, 2, 4, 1) and grey[0, 0, 0, 0] == pytest.approx(want)


def test_bad_frames() -> None:
    spec = InputSpec(width=8, height=8)
    with pytest.raises(ValueError, match="expected a uint8 frame"):
        preprocess(np.zeros((4, 4, 3), np.float32), spec)
    with pytest.raises(ValueError, match=r"got \(4, 4, 2\)"):
        preprocess(np.zeros((4, 4, 2), np.uint8), spec)
    with pytest.raises(ValueError, match="empty frame"):
        preprocess(np.zeros((0, 4, 3), np.uint8), spec)
