"""Pictures of a training run: what the model was shown, and what it finds afterwards.

``train_batch.jpg``
    The first training batch (up to 16 images) exactly as the model receives it (augmented,
    resized, the colours turned back from the normalised tensor) with its labels drawn: wrong
    boxes, a wrong class order, photos rotated by EXIF or augmentation that goes too far show
    here before hours of training are spent on them (Ultralytics writes the same picture).
``val_pred.jpg``
    The first 16 validation images at the model's input size. Detectors: ground-truth boxes
    in white, the best model's detections at the model's own thresholds in class colours
    with scores. Classifiers: the true label, and the predicted one with its probability, in
    green when right and red when wrong.

Drawing never costs the run: :func:`edgecnn.train.fit.train` logs a failure and goes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecnn.data.augment import AugmentConfig
from edgecnn.data.pipeline import make_dataset, read_letterboxed
from edgecnn.data.records import Split
from edgecnn.evaluation.predictor import Predictor
from edgecnn.runtime.spec import InputSpec, ModelSpec
from edgecnn.sinks.base import Detection
from edgecnn.sinks.draw import draw_detections

TRAIN_BATCH_FILE = "train_batch.jpg"
VAL_PRED_FILE = "val_pred.jpg"
#: Images per picture.
TILES = 16
#: Tiles smaller than this (pixels, longer side) are enlarged by a whole factor, pixels kept sharp.
MIN_TILE = 240
GROUND_TRUTH = (255, 255, 255)
RIGHT, WRONG = (60, 180, 75), (56, 56, 255)


def write_train_batch(split: Split, spec: ModelSpec, augment: AugmentConfig, seed: int, path: Path) -> Path:
    """Draw the first batch of ``split`` as training makes it (same augmentation and seed).

    Returns:
        ``path``, a JPEG grid of up to :data:`TILES` images.
    """
    n = min(TILES, len(split))
    ds = make_dataset(split, spec.input, batch_size=n, training=True, augment=augment, seed=seed)
    images, targets = next(iter(ds))
    tiles = []
    for i, tensor in enumerate(np.asarray(images)):
        image = to_bgr(tensor, spec.input)
        if spec.task == "detect":
            classes = np.asarray(targets["classes"][i])
            boxes = np.asarray(targets["boxes"][i])[classes >= 0]
            tiles.append(_labelled(image, boxes, classes[classes >= 0], spec.labels))
        else:
            tiles.append(_captioned(_enlarge(image)[0], [(spec.labels[int(targets[i])], GROUND_TRUTH)]))
    return _write(path, mosaic(tiles))


def write_val_predictions(predictor: Predictor, split: Split, spec: ModelSpec, path: Path) -> Path:
    """Draw the first :data:`TILES` images of ``split`` with ground truth and ``predictor``'s
    results at the spec's thresholds (``conf``, ``iou``, ``max_det``).

    Returns:
        ``path``, a JPEG grid.
    """
    from edgecnn.evaluation.evaluator import predict_results

    records = split.records[:TILES]
    head = Split(split.name, split.task, split.format, split.names, records, category_ids=split.category_ids)
    t = spec.thresholds
    results = predict_results(predictor, head, spec, conf=t.conf, iou=t.iou, max_det=t.max_det)
    class_of = {cid: k for k, cid in enumerate(head.category_ids)}
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for result in results:
        by_image.setdefault(result["image_id"], []).append(result)
    tiles = []
    for record in head.records:
        image, info = read_letterboxed(record.path, spec.input)
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        found = by_image.get(record.image_id, [])
        if spec.task == "classify":
            truth = spec.labels[int(record.label)] if record.label is not None else "?"
            top = found[0] if found else None
            guess = spec.labels[class_of[top["category_id"]]] if top else "-"
            colour = RIGHT if guess == truth else WRONG
            lines = [(truth, GROUND_TRUTH), (f"{guess} {top['score']:.2f}" if top else guess, colour)]
            tiles.append(_captioned(_enlarge(image)[0], lines))
            continue
        big, k = _enlarge(image)
        for box in info.to_input(record.boxes):
            _rectangle(big, box * k, GROUND_TRUTH, 1)
        detections = []
        for result in found:
            x, y, w, h = result["bbox"]
            box = info.to_input(np.array([[x, y, x + w, y + h]], dtype=np.float64))[0] * k
            cls = class_of[result["category_id"]]
            detections.append(Detection(spec.labels[cls], cls, float(result["score"]), tuple(box)))
        tiles.append(draw_detections(big, detections, copy=False))
    return _write(path, mosaic(tiles))


def to_bgr(tensor: np.ndarray, input_spec: InputSpec) -> np.ndarray:
    """A normalised ``(H, W, C)`` model input back to a uint8 BGR image (the inverse of
    :func:`~edgecnn.runtime.preprocessing.preprocess` after resizing)."""
    pixels = np.asarray(tensor, np.float32) * np.asarray(input_spec.std, np.float32) + np.asarray(
        input_spec.mean, np.float32
    )
    image = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if image.shape[-1] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if input_spec.color_order == "RGB" else image


def mosaic(tiles: Sequence[np.ndarray], columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tiles of one size in a grid (row by row, ``ceil(sqrt(n))`` columns by default), grey gaps."""
    if not tiles:
        raise ValueError("no tiles to draw")
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    h, w = tiles[0].shape[:2]
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 114, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return out


def _enlarge(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The image enlarged by a whole factor until its longer side reaches :data:`MIN_TILE`."""
    k = max(1, math.ceil(MIN_TILE / max(image.shape[:2])))
    if k == 1:
        return image.copy(), 1
    return cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST), k


def _labelled(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    big, k = _enlarge(image)
    detections = [
        Detection(labels[int(c)], int(c), 1.0, tuple(np.asarray(b, np.float64) * k))
        for b, c in zip(boxes, classes, strict=True)
    ]
    return draw_detections(big, detections, scores=False, copy=False)


def _rectangle(image: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)


def _captioned(image: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """Text lines on dark bands at the top of the image."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, image.shape[1] / 480)
    y = 0
    for text, colour in lines:
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        cv2.rectangle(image, (0, y), (min(image.shape[1] - 1, tw + 6), y + th + base + 4), (0, 0, 0), -1)
        cv2.putText(image, text, (3, y + th + 2), font, scale, colour, 1, cv2.LINE_AA)
        y += th + base + 4
    return image


def _write(path: Path, image: np.ndarray) -> Path:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise OSError(f"cannot write {path}")
    return path
