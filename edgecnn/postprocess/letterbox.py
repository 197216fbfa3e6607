"""Resize a frame to a model's input size, and map boxes back to the frame.

``letterbox`` keeps the aspect ratio and pads the borders with a grey level (114 by
default, the Ultralytics convention); ``stretch`` resizes without padding. Both return a
:class:`Letterbox` that maps boxes from input pixels back to source-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """The transform from source-frame pixels to model-input pixels.

    ``input = source * (scale_x, scale_y) + (pad_x, pad_y)``; letterbox uses one scale for
    both axes, stretch may not.
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
