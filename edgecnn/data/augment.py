"""Training-time augmentation that keeps boxes consistent with the pixels (numpy and OpenCV).

Detection: mosaic (4 images), one random affine (scale, translation, rotation, shear),
HSV jitter and flips, in that order, as Ultralytics does. Boxes follow every geometric
step: the 4 corners of each box are transformed and the enclosing box is kept, clipped to
the output image; a box is dropped when it ends up narrower or shorter than
``min_box_size`` pixels or keeps less than ``min_area_ratio`` of its (transformed) area.
Classification uses the same affine, HSV jitter and flips, without mosaic.

Every random draw comes from the ``np.random.Generator`` passed in, so the same generator
state gives the same output. With :meth:`AugmentConfig.off` (or any step's parameter at
0) that step leaves the image and the boxes untouched, bit for bit.

Coordinates are those of :mod:`edgecnn.data.records`: ``x1, y1, x2, y2`` pixel edges, a
box from 0 to 10 covers pixels 0..9. OpenCV's warps address pixel centres, so the matrix
handed to :func:`cv2.warpAffine` is shifted by half a pixel to match (see
:func:`_to_pixel_centres`).

Images are uint8, ``(H, W)`` grey or ``(H, W, 3)`` BGR (the order :func:`cv2.imread` gives);
the channel order only matters for the hue shift.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgecnn.postprocess.boxes import box_area

#: ``(image, boxes (N, 4) float32 xyxy pixels, class ids (N,))``: what detection augmentation maps.
DetectionSample = tuple[np.ndarray, np.ndarray, np.ndarray]


#: The parameters that switch a step on (non-zero) or off (0).
_STEPS = ("hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "fliplr", "flipud", "mosaic")


class AugmentConfig(BaseModel):
    """Every augmentation parameter, with defaults for small data sets at small input sizes.

    The defaults are Ultralytics' (``hsv_h`` 0.015, ``hsv_s`` 0.7, ``hsv_v`` 0.4, ``translate``
    0.1, ``scale`` 0.5, ``fliplr`` 0.5, ``min_area_ratio`` 0.1, ``min_box_size`` 2) except two:

    * ``degrees`` 5 (Ultralytics 0): small rotations are a cheap source of variety when there
      are few images; boxes of rotated objects are the enclosing box of the rotated corners,
      which at 5 degrees is at most about 8 % wider and taller than the object, so the angle
      is kept small.
    * ``mosaic`` 0.5 (Ultralytics 1.0): Ultralytics pairs always-on mosaic with switching it
      off for the last 10 epochs (``close_mosaic``), so that the model also learns whole
      frames at the framing it sees at inference. A fixed probability of 0.5 gives both
      all along, without a hook in the training loop.

    Example:
        >>> AugmentConfig().mosaic, AugmentConfig.off().is_off
        (0.5, True)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hsv_h: float = Field(0.015, ge=0.0, le=0.5, description="Hue shift, fraction of the hue circle (+-).")
    hsv_s: float = Field(0.7, ge=0.0, le=1.0, description="Saturation gain, fraction (+-).")
    hsv_v: float = Field(0.4, ge=0.0, le=1.0, description="Value (brightness) gain, fraction (+-).")
    degrees: float = Field(5.0, ge=0.0, le=180.0, description="Rotation, degrees (+-).")
    translate: float = Field(
        0.1, ge=0.0, le=0.9, description="Translation, fraction of the output size (+-)."
    )
    scale: float = Field(0.5, ge=0.0, lt=1.0, description="Scale gain: zoom drawn from 1-scale .. 1+scale.")
    shear: float = Field(0.0, ge=0.0, le=45.0, description="Shear, degrees (+-).")
    fliplr: float = Field(0.5, ge=0.0, le=1.0, description="Probability of a left-right flip.")
    flipud: float = Field(0.0, ge=0.0, le=1.0, description="Probability of an up-down flip.")
    mosaic: float = Field(
        0.5, ge=0.0, le=1.0, description="Probability of a 4-image mosaic (detection only)."
    )
    min_box_size: float = Field(
        2.0, ge=0.0, description="Boxes narrower or shorter than this, in output pixels, are dropped."
    )
    min_area_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Boxes keeping less than this share of their area are dropped."
    )
    rotation_box_shrink: bool = Field(
        False,
        description=(
            "Shrink boxes of rotated images by sqrt(max(|sin a|, |cos a|)) about their centre (the "
            "reduction once in YOLOv5), since the enclosing box of rotated corners overstates a "
            "rounded object. Off: the box always encloses the object."
        ),
    )

    @classmethod
    def off(cls) -> AugmentConfig:
        """The preset for validation: every step off; images and boxes pass unchanged."""
        return cls(**dict.fromkeys(_STEPS, 0.0))

    @property
    def is_off(self) -> bool:
        """True when no step can change an image (box filtering alone does not count)."""
        return all(getattr(self, name) == 0 for name in _STEPS)


def random_affine_matrix(
    rng: np.random.Generator,
    config: AugmentConfig,
    in_size: tuple[int, int],
    out_size: tuple[int, int],
) -> np.ndarray:
    """A random ``3 x 3`` affine from input to output pixel edges, as Ultralytics composes it.

    The input's centre goes to the output's centre (rounded like letterbox padding, so that
    with every parameter at 0 the matrix is an exact integer translation, or the identity
    when the sizes match), after rotation by ``U(-degrees, degrees)`` with zoom
    ``U(1 - scale, 1 + scale)``, shear ``U(-shear, shear)`` on each axis and translation by
    ``U(-translate, translate)`` times the output size. Always draws 6 numbers from ``rng``.

    Args:
        rng: the random generator.
        config: the augmentation parameters.
        in_size: input ``(width, height)``.
        out_size: output ``(width, height)``.
    """
    w, h = in_size
    out_w, out_h = out_size
    angle = rng.uniform(-config.degrees, config.degrees)
    zoom = rng.uniform(1 - config.scale, 1 + config.scale)
    shear_x, shear_y = (math.tan(math.radians(v)) for v in rng.uniform(-config.shear, config.shear, 2))
    jitter_x, jitter_y = rng.uniform(-config.translate, config.translate, 2)

    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    rotate = np.eye(3)
    rotate[:2] = cv2.getRotationMatrix2D((0.0, 0.0), float(angle), float(zoom))
    shear = np.array([[1, shear_x, 0], [shear_y, 1, 0], [0, 0, 1]], np.float64)
    place = np.eye(3)
    place[0, 2] = (out_w - w) // 2 + w / 2 + jitter_x * out_w
    place[1, 2] = (out_h - h) // 2 + h / 2 + jitter_y * out_h
    return place @ shear @ rotate @ centre


def _to_pixel_centres(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 matrix for :func:`cv2.warpAffine` (pixel-centre coordinates) of an edge-coordinate affine.

    Pixel ``i`` spans edges ``i .. i + 1``, its centre is at edge coordinate ``i + 0.5``:
    ``x_out + 0.5 = A (x_in + 0.5) + t``, so ``t' = t + A (0.5, 0.5) - (0.5, 0.5)``.
    """
    m = matrix[:2].copy()
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return m


def transform_boxes(boxes: np.ndarray, matrix: np.ndarray, shrink: bool = False) -> np.ndarray:
    """Map ``(N, 4)`` xyxy boxes through an affine: the enclosing box of the 4 moved corners.

    Args:
        boxes: the boxes, pixel edges.
        matrix: ``2 x 3`` or ``3 x 3`` affine in pixel-edge coordinates.
        shrink: scale each box about its centre by ``sqrt(max(|sin a|, |cos a|))`` where ``a``
            is the matrix's rotation angle (see :attr:`AugmentConfig.rotation_box_shrink`).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    m = np.asarray(matrix, np.float64)[:2]
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 2).astype(np.float64)
    moved = (corners @ m[:, :2].T + m[:, 2]).reshape(-1, 4, 2)
    out = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    if shrink and len(out):
        angle = math.atan2(m[1, 0], m[0, 0])
        reduction = math.sqrt(max(abs(math.sin(angle)), abs(math.cos(angle))))
        centre = (out[:, :2] + out[:, 2:]) / 2
        half = (out[:, 2:] - out[:, :2]) / 2 * reduction
        out = np.concatenate([centre - half, centre + half], axis=1)
    return out.astype(np.float32)


def filter_boxes(
    boxes: np.ndarray,
    classes: np.ndarray,
    reference_area: np.ndarray,
    width: int,
    height: int,
    config: AugmentConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the image and drop those too small or mostly cut off.

    A box is kept when, after clipping, it is at least ``config.min_box_size`` pixels wide and
    high (and not empty) and its area is at least ``config.min_area_ratio`` times
    ``reference_area`` (its whole area before anything was cut, at the output's scale).

    Returns:
        The kept ``(boxes, classes)``.
    """
    clipped = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, [width, height, width, height])
    bw = clipped[:, 2] - clipped[:, 0]
    bh = clipped[:, 3] - clipped[:, 1]
    keep = (
        (bw > 0)
        & (bh > 0)
        & (bw >= config.min_box_size)
        & (bh >= config.min_box_size)
        & (bw * bh >= config.min_area_ratio * np.asarray(reference_area, np.float32))
    )
    return clipped[keep], np.asarray(classes)[keep]


def hsv_jitter(
    image: np.ndarray, config: AugmentConfig, rng: np.random.Generator, color_order: str = "BGR"
) -> np.ndarray:
    """Random hue shift and saturation / value gains, through one lookup table per channel.

    Hue moves by ``U(-hsv_h, hsv_h)`` of the circle; saturation and value are multiplied by
    ``1 + U(-hsv_s, hsv_s)`` and ``1 + U(-hsv_v, hsv_v)``. A grey image gets the value gain
    only. Always draws 3 numbers; returns ``image`` itself when all three gains are 0.
    """
    gains = rng.uniform(-1, 1, 3) * [config.hsv_h, config.hsv_s, config.hsv_v]
    if config.hsv_h == config.hsv_s == config.hsv_v == 0:
        return image
    x = np.arange(256, dtype=np.float32)
    lut_value = np.clip(x * (1 + gains[2]), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.LUT(image, lut_value)
    lut_hue = ((x + gains[0] * 180) % 180).astype(np.uint8)
    lut_sat = np.clip(x * (1 + gains[1]), 0, 255).astype(np.uint8)
    rgb = color_order == "RGB"
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV if rgb else cv2.COLOR_BGR2HSV))
    merged = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_value)))
    return cv2.cvtColor(merged, cv2.COLOR_HSV2RGB if rgb else cv2.COLOR_HSV2BGR)


def mosaic4(
    samples: list[DetectionSample],
    out_size: tuple[int, int],
    rng: np.random.Generator,
    pad_value: int = 114,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ultralytics' 4-image mosaic on a canvas twice the output size.

    The images (each at most ``out_size``) meet at a random centre in the middle half of the
    canvas: the first to its top-left, then top-right, bottom-left, bottom-right; parts
    beyond the canvas are cut. The caller then maps the canvas to ``out_size`` with a
    random affine (see :func:`augment_detection`). Draws 2 numbers from ``rng``.

    Returns:
        ``(canvas, boxes clipped to the visible part of their image, class ids, reference
        areas)``; the reference area of a box is its whole area before the cut.
    """
    out_w, out_h = out_size
    first = samples[0][0]
    canvas = np.full((2 * out_h, 2 * out_w, *first.shape[2:]), pad_value, dtype=first.dtype)
    xc = int(rng.uniform(out_w * 0.5, out_w * 1.5))
    yc = int(rng.uniform(out_h * 0.5, out_h * 1.5))
    all_boxes, all_classes, all_areas = [], [], []
    for i, (image, boxes, classes) in enumerate(samples):
        h, w = image.shape[:2]
        if i == 0:  # top-left: its bottom-right corner at the centre
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif i == 1:  # top-right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * out_w), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif i == 2:  # bottom-left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(yc + h, 2 * out_h)
            x1b, y1b = w - (x2a - x1a), 0
        else:  # bottom-right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * out_w), min(yc + h, 2 * out_h)
            x1b, y1b = 0, 0
        canvas[y1a:y2a, x1a:x2a] = image[y1b : y1b + (y2a - y1a), x1b : x1b + (x2a - x1a)]
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        all_areas.append(box_area(boxes))
        moved = boxes + np.array([x1a - x1b, y1a - y1b] * 2, np.float32)
        all_boxes.append(np.clip(moved, [x1a, y1a, x1a, y1a], [x2a, y2a, x2a, y2a]).astype(np.float32))
        all_classes.append(np.asarray(classes).reshape(-1))
    return canvas, np.concatenate(all_boxes), np.concatenate(all_classes), np.concatenate(all_areas)


def _warp(
    image: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig,
    out_size: tuple[int, int],
    pad_value: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one random affine; returns the image and the matrix (None when nothing moved)."""
    h, w = image.shape[:2]
    matrix = random_affine_matrix(rng, config, (w, h), out_size)
    if np.array_equal(matrix, np.eye(3)):
        return image, None
    border = (pad_value,) * (image.shape[2] if image.ndim == 3 else 1)
    warped = cv2.warpAffine(
        image, _to_pixel_centres(matrix), out_size, flags=cv2.INTER_LINEAR, borderValue=border
    )
    return warped, matrix


def _flips(
    image: np.ndarray, boxes: np.ndarray, config: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Left-right then up-down flips with their probabilities (always draws 2 numbers)."""
    h, w = image.shape[:2]
    lr, ud = rng.random(2)
    if lr < config.fliplr:
        image = cv2.flip(image, 1)
        boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], axis=1)
    if ud < config.flipud:
        image = cv2.flip(image, 0)
        boxes = np.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], axis=1)
    return image, boxes


def augment_detection(
    image: np.ndarray,
    boxes: np.ndarray,
    classes: np.ndarray,
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    out_size: tuple[int, int] | None = None,
    mosaic_source: Callable[[], DetectionSample] | None = None,
    pad_value: int = 114,
    color_order: str = "BGR",
) -> DetectionSample:
    """Augment one detection sample: mosaic, random affine, HSV jitter, flips.

    Args:
        image: uint8 ``(H, W)`` or ``(H, W, 3)`` image (for a letterboxed model, the resized
            image without its padding; it is centred in ``out_size``).
        boxes: ``(N, 4)`` xyxy boxes in ``image`` pixels.
        classes: ``(N,)`` class ids (any dtype; returned filtered alike).
        config: the augmentation parameters.
        rng: the random generator; the same state gives the same result.
        out_size: output ``(width, height)``; default the image's size.
        mosaic_source: returns another random sample (image at most ``out_size``) for the
            mosaic; without it there is no mosaic. Called 3 times per mosaic, after the
            mosaic draw and before the affine draws.
        pad_value: grey level of the borders the affine and the mosaic uncover.
        color_order: ``BGR`` or ``RGB``, for the hue shift.

    Returns:
        ``(image (out_h, out_w[, 3]) uint8, boxes (M, 4) float32, classes (M,))``; with
        :meth:`AugmentConfig.off` and ``out_size`` equal to the image size, the inputs unchanged.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img = np.zeros((32, 48, 3), np.uint8)
        >>> out, b, c = augment_detection(img, [[4, 4, 20, 20]], [1], AugmentConfig.off(), rng)
        >>> b.tolist(), c.tolist()
        ([[4.0, 4.0, 20.0, 20.0]], [1])
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    out_size = out_size or (image.shape[1], image.shape[0])
    reference = box_area(boxes)
    if mosaic_source is not None and config.mosaic > 0 and rng.random() < config.mosaic:
        samples = [(image, boxes, classes)] + [mosaic_source() for _ in range(3)]
        image, boxes, classes, reference = mosaic4(samples, out_size, rng, pad_value)
    image, matrix = _warp(image, rng, config, out_size, pad_value)
    if matrix is not None:
        boxes = transform_boxes(boxes, matrix, config.rotation_box_shrink)
        reference = reference * abs(np.linalg.det(matrix[:2, :2]))
        boxes, classes = filter_boxes(boxes, classes, reference, out_size[0], out_size[1], config)
    image = hsv_jitter(image, config, rng, color_order)
    image, boxes = _flips(image, boxes, config, rng)
    return image, boxes.astype(np.float32, copy=False), classes


def augment_classification(
    image: np.ndarray,
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    out_size: tuple[int, int] | None = None,
    pad_value: int = 114,
    color_order: str = "BGR",
) -> np.ndarray:
    """Augment one classification image: random affine (crop / zoom, shift, rotation), HSV, flips.

    A zoom above 1 crops into the image, below 1 shows it smaller on ``pad_value`` borders;
    ``mosaic`` and the box thresholds do not apply. Arguments as :func:`augment_detection`.
    """
    out_size = out_size or (image.shape[1], image.shape[0])
    image, _ = _warp(image, rng, config, out_size, pad_value)
    image = hsv_jitter(image, config, rng, color_order)
    image, _ = _flips(image, np.zeros((0, 4), np.float32), config, rng)
    return image
