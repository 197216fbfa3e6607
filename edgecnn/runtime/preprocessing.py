"""Camera frame to model input tensor, per frame, as the model's :class:`InputSpec` says.

The steps are those of :mod:`edgecnn.runtime.spec`: channel conversion (grey, RGB or BGR),
``letterbox`` or ``stretch`` to the input size, then ``x = (pixel - mean) / std`` per
channel. They are arranged to touch each pixel as few times as possible:

* grey models convert to grey before resizing (fewer bytes to resize); colour models
  resize first and reorder channels after, on the small image (a channel permutation,
  dropping alpha and grey-to-colour all commute exactly with a per-channel resize);
* normalisation is one :func:`cv2.LUT` pass from uint8 pixels through a 256-entry table
  per channel, since a pixel has only 256 values; the table holds exactly the float32
  values ``(v - mean) / std`` that the arithmetic would give;
* for int8/uint8 input tensors, :func:`preprocess_quantized` bakes the input quantisation
  into the table too, so uint8 pixels go straight to the int8 tensor in the same single
  pass, with the same values as ``quantize(preprocess(frame))``.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from edgecnn.postprocess.letterbox import Letterbox, fit_to_input
from edgecnn.runtime.spec import InputSpec
from edgecnn.runtime.tensors import QUANTIZED_DTYPES


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str | np.dtype) -> np.ndarray:
    """Affine quantisation as TFLite defines it: ``q = clip(round(x / scale) + zero_point)``.

    Computed in float32; ``round`` is :func:`numpy.rint` (halves to even); the clip is to
    the range of ``dtype`` (int8 or uint8).
    """
    name = np.dtype(dtype).name
    if name not in QUANTIZED_DTYPES:
        raise ValueError(f"cannot quantise to {name}: expected one of {', '.join(QUANTIZED_DTYPES)}")
    low, high = QUANTIZED_DTYPES[name]
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + np.float32(zero_point)
    return np.clip(q, low, high).astype(name)


@lru_cache(maxsize=32)
def _table(
    mean: tuple[float, ...], std: tuple[float, ...], channels: int, quant: tuple[float, int, str] | None
) -> np.ndarray:
    values = np.arange(256, dtype=np.float32)[:, None]
    table = (values - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    table = np.broadcast_to(table, (256, channels))
    if quant is not None:
        table = quantize(table, *quant)
    table = np.ascontiguousarray(table).reshape(1, 256, channels)
    table.flags.writeable = False  # shared by every call through the cache
    return table


def _resize(frame_bgr: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Letterbox]:
    """Resize and convert channels: ``(H, W)`` uint8 for grey models, ``(H, W, 3)`` otherwise."""
    frame = np.asarray(frame_bgr)
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) frame, got {frame.shape}")
    grey = frame.ndim == 2
    if spec.channels == 1 and not grey:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    image, info = fit_to_input(frame, spec.resize, spec.width, spec.height, spec.pad_value)
    if spec.channels == 3:
        rgb = spec.color_order == "RGB"
        if grey:
            code = cv2.COLOR_GRAY2RGB if rgb else cv2.COLOR_GRAY2BGR
        elif frame.shape[2] == 4:
            code = cv2.COLOR_BGRA2RGB if rgb else cv2.COLOR_BGRA2BGR
        else:
            code = cv2.COLOR_BGR2RGB if rgb else None
        if code is not None:
            image = cv2.cvtColor(image, code)
    return np.ascontiguousarray(image), info


def preprocess(frame_bgr: np.ndarray, input_spec: InputSpec) -> tuple[np.ndarray, Letterbox]:
    """Turn a camera frame into the model's float32 input tensor.

    Args:
        frame_bgr: uint8 frame, ``(H, W, 3)`` BGR as OpenCV delivers it; ``(H, W)`` /
            ``(H, W, 1)`` grey and ``(H, W, 4)`` BGRA are accepted too.
        input_spec: the model's input settings.

    Returns:
        The ``(1, height, width, channels)`` float32 tensor and the :class:`Letterbox`
        that maps boxes in input pixels back to the frame.
    """
    image, info = _resize(frame_bgr, input_spec)
    table = _table(input_spec.mean, input_spec.std, input_spec.channels, None)
    tensor = cv2.LUT(image, table)
    return tensor.reshape(1, input_spec.height, input_spec.width, input_spec.channels), info


def preprocess_quantized(
    frame_bgr: np.ndarray,
    input_spec: InputSpec,
    scale: float,
    zero_point: int,
    dtype: str | np.dtype = "int8",
) -> tuple[np.ndarray, Letterbox]:
    """Like :func:`preprocess`, straight to a quantised (int8 or uint8) input tensor.

    The result equals ``quantize(preprocess(frame)[0], scale, zero_point, dtype)`` exactly,
    in one pass over the pixels.

    Args:
        frame_bgr: the frame, as for :func:`preprocess`.
        input_spec: the model's input settings.
        scale: the input tensor's quantisation scale.
        zero_point: the input tensor's zero point.
        dtype: the input tensor's type, ``int8`` or ``uint8``.
    """
    image, info = _resize(frame_bgr, input_spec)
    quant = (float(scale), int(zero_point), np.dtype(dtype).name)
    table = _table(input_spec.mean, input_spec.std, input_spec.channels, quant)
    tensor = cv2.LUT(image, table)
    return tensor.reshape(1, input_spec.height, input_spec.width, input_spec.channels), info
