"""Resize a frame to a model's input size, and map boxes back to the frame.

``letterbox`` keeps the aspect ratio and pads the borders with a grey level (114 by
default, the Ultralytics convention); ``stretch`` resizes without padding; ``center_crop``
keeps the aspect ratio and cuts the borders instead (the classifier convention of
Ultralytics, torchvision and Keras applications). Each returns a :class:`Letterbox` that maps
boxes from input pixels back to source-frame pixels; :func:`fit_to_input` picks one by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: How a frame is brought to the model's input size (``InputSpec.resize``).
RESIZE_MODES: tuple[str, ...] = ("letterbox", "stretch", "crop")


@dataclass(frozen=True)
class Letterbox:
    """The transform from source-frame pixels to model-input pixels.

    ``input = source * (scale_x, scale_y) + (pad_x, pad_y)``; letterbox uses one scale for
    both axes, stretch may not; a centre crop has negative padding (the borders cut off).
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    src_width: int
    src_height: int

    def to_source(self, boxes_xyxy: np.ndarray, clip: bool = True) -> np.ndarray:
        """Map ``(N, 4)`` boxes in input pixels to source-frame pixels (clipped to the frame)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4).copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.scale_x
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.scale_y
        if clip:
            w, h = self.src_width, self.src_height
            boxes = np.clip(boxes, 0, np.array([w, h, w, h], dtype=np.float32))
        return boxes

    def to_input(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` boxes in source-frame pixels to input pixels."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4).copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]] * self.scale_x + self.pad_x
        boxes[:, [1, 3]] = boxes[:, [1, 3]] * self.scale_y + self.pad_y
        return boxes


def letterbox(
    image: np.ndarray,
    width: int,
    height: int,
    pad_value: int = 114,
    scaleup: bool = True,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` into ``width`` x ``height`` keeping its aspect ratio, centred, padded.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` uint8 frame.
        width: target width in pixels.
        height: target height in pixels.
        pad_value: grey level of the padding (0..255).
        scaleup: if False, smaller frames are padded but not enlarged.
        interpolation: OpenCV interpolation flag for the resize.

    Returns:
        The ``(height, width[, C])`` image and the :class:`Letterbox` transform.
    """
    src_h, src_w = image.shape[:2]
    if src_h == 0 or src_w == 0:
        raise ValueError(f"cannot letterbox an empty frame of shape {image.shape}")
    scale = min(width / src_w, height / src_h)
    if not scaleup:
        scale = min(scale, 1.0)
    new_w = max(1, round(src_w * scale))
    new_h = max(1, round(src_h * scale))
    pad_x = (width - new_w) // 2
    pad_y = (height - new_h) // 2
    resized = image if (new_w, new_h) == (src_w, src_h) else cv2.resize(
        image, (new_w, new_h), interpolation=interpolation
    )
    out = np.full((height, width, *image.shape[2:]), pad_value, dtype=image.dtype)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized.reshape(new_h, new_w, *image.shape[2:])
    info = Letterbox(new_w / src_w, new_h / src_h, float(pad_x), float(pad_y), src_w, src_h)
    return out, info


def stretch(
    image: np.ndarray, width: int, height: int, interpolation: int = cv2.INTER_LINEAR
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` to exactly ``width`` x ``height`` (aspect ratio not kept)."""
    src_h, src_w = image.shape[:2]
    if src_h == 0 or src_w == 0:
        raise ValueError(f"cannot resize an empty frame of shape {image.shape}")
    out = cv2.resize(image, (width, height), interpolation=interpolation)
    return out, Letterbox(width / src_w, height / src_h, 0.0, 0.0, src_w, src_h)


def center_crop(
    image: np.ndarray, width: int, height: int, interpolation: int = cv2.INTER_LINEAR
) -> tuple[np.ndarray, Letterbox]:
    """Cut the largest centred region with the input's aspect ratio, resize it to ``width`` x
    ``height``.

    For a square input this is Ultralytics' ``CenterCrop`` (the central square of side
    ``min(H, W)``, resized), the same as resizing the shorter side and cropping the centre.
    Boxes outside the region map to points beyond the input's edges.
    """
    src_h, src_w = image.shape[:2]
    if src_h == 0 or src_w == 0:
        raise ValueError(f"cannot crop an empty frame of shape {image.shape}")
    scale = max(width / src_w, height / src_h)
    crop_w = min(src_w, max(1, round(width / scale)))
    crop_h = min(src_h, max(1, round(height / scale)))
    x0 = (src_w - crop_w) // 2
    y0 = (src_h - crop_h) // 2
    region = image[y0 : y0 + crop_h, x0 : x0 + crop_w]
    out = region if (crop_w, crop_h) == (width, height) else cv2.resize(
        region, (width, height), interpolation=interpolation
    )
    sx, sy = width / crop_w, height / crop_h
    return np.ascontiguousarray(out), Letterbox(sx, sy, -x0 * sx, -y0 * sy, src_w, src_h)


def fit_to_input(
    image: np.ndarray, mode: str, width: int, height: int, pad_value: int = 114
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` to ``width`` x ``height`` by ``mode`` (one of :data:`RESIZE_MODES`).

    Raises:
        ValueError: an unknown mode or an empty image.
    """
    if mode == "letterbox":
        return letterbox(image, width, height, pad_value=pad_value)
    if mode == "stretch":
        return stretch(image, width, height)
    if mode == "crop":
        return center_crop(image, width, height)
    raise ValueError(f"unknown resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)}")
