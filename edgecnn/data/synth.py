"""Deterministic synthetic datasets: coloured shapes on textured, noisy backgrounds.

The embedded default for the demo and the tests (nothing is downloaded). Each image holds
shapes of several classes at varying sizes, some overlapping, on a background of smooth
colour noise, gradients, clutter lines and pixel noise, so that a detector has to learn
shape, not colour or position. The same seed gives the same images and labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecnn.data.records import ImageRecord, Task
from edgecnn.data.writers import write_dataset
from edgecnn.errors import UserError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "star")


@dataclass(frozen=True)
class SynthObject:
    """One drawn shape: its class, the tight box (x1, y1, x2, y2) in pixels of what it shows, and
    the share of its drawn pixels still visible in the final image."""

    class_id: int
    box: tuple[float, float, float, float]
    visible: float = 1.0


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth colour noise + a gradient + clutter lines + pixel noise."""
    cells = int(rng.integers(3, 9))
    coarse = rng.integers(0, 256, size=(cells, cells, 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(-40, 40, width, dtype=np.float32)[None, :, None]
    img = 0.7 * img + 0.3 * float(rng.uniform(60, 200)) + ramp * float(rng.uniform(-1, 1))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 8))):
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, p1, p2, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def _star_points(cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.45
        a = angle + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return np.array(pts, dtype=np.float32)


def _draw_mask(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` uint8 mask (255 inside) of one shape, randomly rotated/stretched."""
    mask = np.zeros((size, size), np.uint8)
    c = (size - 1) / 2
    r = size * 0.48
    angle = float(rng.uniform(0, 2 * math.pi))
    shift = 4  # sub-pixel precision for anti-aliased polygons
    s = 1 << shift

    def poly(points: np.ndarray) -> None:
        cv2.fillPoly(mask, [np.round(points * s).astype(np.int32)], 255, cv2.LINE_AA, shift)

    if shape == "circle":
        cv2.circle(mask, (round(c * s), round(c * s)), round(r * s), 255, -1, cv2.LINE_AA, shift)
    elif shape == "ring":
        thickness = max(2, round(size * 0.14))
        cv2.circle(mask, (round(c * s), round(c * s)), round(r * 0.8 * s), 255, thickness, cv2.LINE_AA, shift)
    elif shape == "square":
        half = r * 0.72
        corners = np.array([(-half, -half), (half, -half), (half, half), (-half, half)], np.float32)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
        poly(corners @ rot.T + c)
    elif shape == "triangle":
        pts = [
            (c + r * math.cos(angle + k * 2 * math.pi / 3), c + r * math.sin(angle + k * 2 * math.pi / 3))
            for k in range(3)
        ]
        poly(np.array(pts, np.float32))
    elif shape == "cross":
        arm = r * 0.3
        bar = np.array([(-r, -arm), (r, -arm), (r, arm), (-r, arm)], np.float32)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
        poly(bar @ rot.T + c)
        poly(bar[:, ::-1] @ rot.T + c)
    elif shape == "star":
        poly(_star_points(c, c, r, angle))
    else:  # pragma: no cover - guarded by SHAPES
        raise ValueError(f"unknown shape {shape!r}")
    return mask


def _clip_to_image(mask: np.ndarray, x: int, y: int, width: int, height: int) -> tuple | None:
    """The part of ``mask`` placed at (x, y) that falls inside the image: ``(region slices, mask
    crop)``, or None when nothing does."""
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (slice(y0, y1), slice(x0, x1)), mask[y0 - y : y1 - y, x0 - x : x1 - x]


def _paste(img: np.ndarray, mask: np.ndarray, x: int, y: int, colour: np.ndarray) -> tuple[float, ...] | None:
    """Alpha-blend ``colour`` through ``mask`` at (x, y); return the tight box of what is visible."""
    clipped = _clip_to_image(mask, x, y, img.shape[1], img.shape[0])
    if clipped is None:
        return None
    (rows, cols), m = clipped
    ys, xs = np.nonzero(m > 127)
    if len(xs) == 0:
        return None
    alpha = (m.astype(np.float32) / 255.0)[..., None]
    region = img[rows, cols].astype(np.float32)
    img[rows, cols] = (region * (1 - alpha) + colour[None, None, :] * alpha).astype(np.uint8)
    return (
        float(cols.start + xs.min()),
        float(rows.start + ys.min()),
        float(cols.start + xs.max() + 1),
        float(rows.start + ys.max() + 1),
    )


def _visible_box(owner: np.ndarray, index: int) -> tuple[float, ...] | None:
    """Tight box of the pixels that still show shape ``index`` (None when none do)."""
    ys, xs = np.nonzero(owner == index)
    if len(xs) == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def _contrasting_colour(
    rng: np.random.Generator,
    img: np.ndarray,
    x: int,
    y: int,
    size: int,
    neighbours: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """A colour that differs from the local background, and from the colours of the shapes it
    touches (``neighbours``), by a clear margin."""
    patch = img[max(y, 0) : y + size, max(x, 0) : x + size]
    mean = patch.reshape(-1, 3).mean(axis=0) if patch.size else np.full(3, 128.0)
    for _ in range(40):
        colour = rng.integers(0, 256, 3).astype(np.float32)
        if np.abs(colour - mean).sum() > 180 and all(np.abs(colour - c).sum() > 150 for c in neighbours):
            return colour
    return 255.0 - mean


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def synth_detection_image(
    rng: np.random.Generator,
    width: int,
    height: int,
    num_classes: int,
    max_objects: int = 5,
    min_size: float = 0.12,
    max_size: float = 0.5,
    max_overlap: float = 0.3,
    max_occlusion: float = 0.3,
) -> tuple[np.ndarray, list[SynthObject]]:
    """One BGR image with 1..``max_objects`` shapes and their boxes.

    Shapes are drawn one over the other. A placement is redrawn when its box overlaps an
    earlier shape's box by more than ``max_overlap`` IoU, or when it would hide more than
    ``max_occlusion`` of the pixels an earlier shape still shows, so every labelled shape stays
    recognisable (with ``k`` later shapes over it, at least ``(1 - max_occlusion) ** k`` of it
    shows; in practice far more). Each box is the tight box of the pixels its shape shows in the final image
    (the visible extent, as COCO boxes are).

    Args:
        rng: the random generator (the caller seeds it per image for determinism).
        width: image width in pixels.
        height: image height in pixels.
        num_classes: use the first ``num_classes`` of :data:`SHAPES`.
        max_objects: most shapes per image.
        min_size: smallest shape side as a fraction of the shorter image side.
        max_size: largest shape side as a fraction of the shorter image side.
        max_overlap: largest IoU allowed between two shapes' boxes.
        max_occlusion: largest share of an earlier shape's visible pixels a later one may cover.
    """
    img = _background(rng, width, height)
    owner = np.full((height, width), -1, np.int32)  # which shape shows at each pixel (-1: none)
    shown: list[int] = []  # visible pixel count per shape
    classes: list[int] = []
    colours: list[np.ndarray] = []
    drawn: list[int] = []  # pixel count per shape as drawn
    short = min(width, height)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(10):
            size = max(6, int(rng.uniform(min_size, max_size) * short))
            x = int(rng.integers(-size // 8, width - size + size // 8 + 1))
            y = int(rng.integers(-size // 8, height - size + size // 8 + 1))
            class_id = int(rng.integers(0, num_classes))
            mask = _draw_mask(SHAPES[class_id], size, rng)
            clipped = _clip_to_image(mask, x, y, width, height)
            if clipped is None:
                continue
            (rows, cols), m = clipped
            covered = owner[rows, cols][m > 127]
            if covered.size == 0:
                continue
            hidden = np.bincount(covered[covered >= 0], minlength=len(shown))
            boxes = [_visible_box(owner, i) for i in range(len(shown))]
            guess = (float(x), float(y), float(x + size), float(y + size))
            if all(hidden[i] <= max_occlusion * shown[i] for i in range(len(shown))) and all(
                b is None or _iou(guess, b) <= max_overlap for b in boxes
            ):
                break
        else:
            continue
        touched = [colours[i] for i, b in enumerate(boxes) if b is not None and _iou(guess, b) > 0]
        colour = _contrasting_colour(rng, img, x, y, size, touched)
        if _paste(img, mask, x, y, colour) is None:
            continue
        colours.append(colour)
        region = owner[rows, cols]
        region[m > 127] = len(shown)
        drawn.append(int((m > 127).sum()))
        shown = [int((owner == i).sum()) for i in range(len(shown) + 1)]
        classes.append(class_id)
    objects = []
    for i, class_id in enumerate(classes):
        box = _visible_box(owner, i)
        if box is not None and (box[2] - box[0]) >= 4 and (box[3] - box[1]) >= 4:
            objects.append(SynthObject(class_id, box, shown[i] / drawn[i]))
    noise = rng.normal(0, float(rng.uniform(3, 12)), img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img, objects


def synth_classification_image(
    rng: np.random.Generator, width: int, height: int, class_id: int
) -> np.ndarray:
    """One BGR image with a single shape of ``class_id``, centred-ish, on a textured background."""
    img = _background(rng, width, height)
    short = min(width, height)
    size = max(6, int(rng.uniform(0.45, 0.85) * short))
    x = int(rng.integers(0, max(1, width - size + 1)))
    y = int(rng.integers(0, max(1, height - size + 1)))
    mask = _draw_mask(SHAPES[class_id], size, rng)
    _paste(img, mask, x, y, _contrasting_colour(rng, img, x, y, size))
    noise = rng.normal(0, float(rng.uniform(3, 10)), img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for image ``index`` of a set made with ``seed`` (independent per image)."""
    return np.random.default_rng([seed, index])


def write_synth_dataset(
    out: str | Path,
    task: Task = "detect",
    n: int = 600,
    imgsz: int = 160,
    num_classes: int = 4,
    seed: int = 0,
    ratios: Sequence[float] = (0.7, 0.2, 0.1),
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate a synthetic dataset and write it with its ``data.yaml``.

    Detection sets are written as COCO JSON (``annotations/instances_<split>.json`` with
    images in ``<split>/``), classification sets as class folders. The same arguments
    always give the same files.

    Args:
        out: the dataset root (created).
        task: ``detect`` (1-5 shapes per image) or ``classify`` (one shape per image,
            classes balanced).
        n: total number of images over all splits.
        imgsz: image width and height in pixels.
        num_classes: how many of :data:`SHAPES` to use (1..6).
        seed: the random seed.
        ratios: train / val / test fractions (a zero fraction leaves the split out).
        progress: called with the number of images written so far, after each image.

    Returns:
        The ``data.yaml`` written.
    """
    if not 1 <= num_classes <= len(SHAPES):
        raise UserError(f"--classes must be 1..{len(SHAPES)}, got {num_classes}")
    if n < 1 or imgsz < 16:
        raise UserError(f"need n >= 1 and imgsz >= 16, got n={n}, imgsz={imgsz}")
    counts = _split_counts(n, ratios)
    names = list(SHAPES[:num_classes])
    root = Path(out)
    splits: dict[str, list[ImageRecord]] = {}
    index = 0
    for split, count in counts.items():
        records: list[ImageRecord] = []
        for k in range(count):
            rng = image_rng(seed, index)
            if task == "detect":
                img, objects = synth_detection_image(rng, imgsz, imgsz, num_classes)
                path = root / split / f"{split}_{k:05d}.jpg"
                record = ImageRecord(
                    path,
                    k + 1,
                    imgsz,
                    imgsz,
                    boxes=[o.box for o in objects] or np.zeros((0, 4)),
                    class_ids=[o.class_id for o in objects],
                )
            else:
                label = index % num_classes
                img = synth_classification_image(rng, imgsz, imgsz, label)
                path = root / split / names[label] / f"{split}_{k:05d}.jpg"
                record = ImageRecord(path, k + 1, imgsz, imgsz, label=label)
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            records.append(record)
            index += 1
            if progress is not None:
                progress(index)
        splits[split] = records
    return write_dataset(root, splits, names, "coco" if task == "detect" else "folders")


def _split_counts(n: int, ratios: Sequence[float]) -> dict[str, int]:
    """Image counts per split from fractions; rounding goes to train."""
    if len(ratios) not in (2, 3) or any(r < 0 for r in ratios) or not 0.999 <= sum(ratios) <= 1.001:
        raise UserError(f"--ratios needs 2 or 3 non-negative fractions summing to 1, got {list(ratios)}")
    names = ("train", "val", "test")[: len(ratios)]
    counts = {name: int(n * r) for name, r in zip(names, ratios, strict=True)}
    counts["train"] += n - sum(counts.values())
    return {name: c for name, c in counts.items() if c > 0}
