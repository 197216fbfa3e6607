"""Fixtures for the training-data tests: scenes of coloured rectangles whose boxes are known
exactly, small synthetic datasets written to disk, and a mask-to-box oracle.

A rectangle is drawn at full intensity (255) in one colour channel on a black image, so its
pixels can be found again after any warp (channel value >= 128, i.e. at least half covered)
and compared with the box the augmentation reports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.data import ImageRecord, Split
from edgecnn.data.synth import write_synth_dataset


def rect_scene(
    width: int, height: int, rects: list[tuple[int, int, int, int]], channels: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A black BGR image with rectangle ``i`` (xyxy, integer pixel edges) filled with 255 in
    channel ``channels[i]``; returns ``(image, boxes float32, classes = channels)``."""
    image = np.zeros((height, width, 3), np.uint8)
    for (x1, y1, x2, y2), c in zip(rects, channels, strict=True):
        image[y1:y2, x1:x2, c] = 255
    return image, np.array(rects, np.float32).reshape(-1, 4), np.array(channels, np.int64)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """The tight xyxy box (pixel edges) of a boolean mask, or None when it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def channel_box_near(image: np.ndarray, channel: int, box: np.ndarray, margin: int = 4) -> np.ndarray | None:
    """Tight box of the channel's pixels (>= 128) within ``box`` grown by ``margin`` px."""
    h, w = image.shape[:2]
    x1, y1 = max(int(box[0]) - margin, 0), max(int(box[1]) - margin, 0)
    x2, y2 = min(int(np.ceil(box[2])) + margin, w), min(int(np.ceil(box[3])) + margin, h)
    found = mask_box(image[y1:y2, x1:x2, channel] >= 128)
    return None if found is None else found + np.array([x1, y1, x1, y1], np.float32)


@pytest.fixture(name="rect_scene")
def rect_scene_fixture() -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`rect_scene`: ``rect_scene(width, height, rects, channels)``."""
    return rect_scene


@pytest.fixture(name="channel_box_near")
def channel_box_near_fixture() -> Callable[..., np.ndarray | None]:
    """:func:`channel_box_near`: ``channel_box_near(image, channel, box, margin=4)``."""
    return channel_box_near


@pytest.fixture(scope="session")
def rect_split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    """Six lossless PNGs of odd sizes (landscape, portrait, square) with 1-3 coloured rectangles
    each, as a detection split; the class id of a box is the channel it is drawn in."""
    folder = tmp_path_factory.mktemp("rects")
    rng = np.random.default_rng(3)
    records = []
    for i, (w, h) in enumerate([(80, 50), (50, 90), (64, 64), (120, 40), (45, 45), (96, 72)]):
        rects, channels = [], []
        for c in rng.permutation(3)[: int(rng.integers(1, 4))]:
            bw, bh = int(rng.integers(8, w // 2)), int(rng.integers(8, h // 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            rects.append((x, y, x + bw, y + bh))
            channels.append(int(c))
        image, boxes, classes = rect_scene(w, h, rects, channels)
        path = folder / f"rect_{i}.png"
        cv2.imwrite(str(path), image)
        records.append(ImageRecord(path, i + 1, w, h, boxes, classes))
    return Split("train", "detect", "yolo", ["blue", "green", "red"], records)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-image synthetic detection set at 64 px, all in train (one pool): its data.yaml."""
    root = tmp_path_factory.mktemp("synth_det")
    return write_synth_dataset(root, "detect", n=40, imgsz=64, num_classes=4, seed=5, ratios=(1.0, 0.0))


@pytest.fixture(scope="session")
def synth_cls_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-image synthetic classification set (3 classes, 48 px), all in train: its data.yaml."""
    root = tmp_path_factory.mktemp("synth_cls")
    return write_synth_dataset(root, "classify", n=30, imgsz=48, num_classes=3, seed=2, ratios=(1.0, 0.0))
