"""Fixtures for the dataset tests: small images and records, whole datasets in every format.

Images are generated with OpenCV (64x48 noise PNG/JPEG) or built from scikit-learn's real
handwritten digits (upscaled and pasted onto canvases). Datasets are written with edgecnn's
own writers; the format tests also build files by hand so that the writers are not the
only witness of the readers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.data import ImageRecord, write_dataset

NAMES = ["cat", "dog", "bird"]
WIDTH, HEIGHT = 64, 48


def _write_image(path: Path, width: int = WIDTH, height: int = HEIGHT, seed: int = 0, **params: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    flags = [v for pair in params.items() for v in (getattr(cv2, pair[0]), pair[1])]
    assert cv2.imwrite(str(path), pixels, flags)
    return path


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """``write_image(path, width=64, height=48, seed=0, **imwrite_flags)`` writes a noise image
    (format from the suffix; flags by OpenCV name, e.g. ``IMWRITE_JPEG_PROGRESSIVE=1``)."""
    return _write_image


@pytest.fixture
def names() -> list[str]:
    """The class names of the :func:`records` fixture."""
    return list(NAMES)


@pytest.fixture
def records(tmp_path: Path) -> list[ImageRecord]:
    """Four detection records on real 64x48 files: fractional boxes, a box touching the far
    corner, an image without objects, a difficult and a crowd flag, PNG and JPEG."""
    src = tmp_path / "src"
    return [
        ImageRecord(
            _write_image(src / "a.png", seed=1),
            1,
            WIDTH,
            HEIGHT,
            boxes=[[1.5, 2.25, 30.0, 40.75], [10, 10, 64, 48]],
            class_ids=[0, 2],
            difficult=[False, True],
        ),
        ImageRecord(_write_image(src / "b.jpg", seed=2), 2, WIDTH, HEIGHT),
        ImageRecord(
            _write_image(src / "c.png", seed=3),
            3,
            WIDTH,
            HEIGHT,
            boxes=[[0, 0, 8, 6], [20.5, 5.5, 50.25, 44.0], [33, 1, 63, 47]],
            class_ids=[1, 1, 0],
            iscrowd=[False, True, False],
        ),
        ImageRecord(
            _write_image(src / "d.jpg", seed=4), 4, WIDTH, HEIGHT, boxes=[[5, 5, 15, 15]], class_ids=[2]
        ),
    ]


@pytest.fixture
def make_dataset(tmp_path: Path, records: list[ImageRecord]) -> Callable[[str], Path]:
    """``make_dataset("yolo")`` writes the ``records`` as train (all) and val (the first two)
    in that format and returns the data.yaml; for ``folders`` the records get labels."""

    def make(fmt: str) -> Path:
        recs = records
        if fmt == "folders":
            recs = [
                ImageRecord(r.path, r.image_id, r.width, r.height, label=i % 3) for i, r in enumerate(records)
            ]
        return write_dataset(tmp_path / fmt, {"train": recs, "val": recs[:2]}, NAMES, fmt)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's real 8x8 handwritten digits (0..16 grey levels) and their targets."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images, data.target


DIGIT_NAMES = ["zero", "one", "two"]


@pytest.fixture(scope="session")
def digits_detection(
    tmp_path_factory: pytest.TempPathFactory, digits: tuple[np.ndarray, np.ndarray]
) -> tuple[list[ImageRecord], dict[int, np.ndarray]]:
    """Eight 96x72 JPEG canvases with 1..3 upscaled digits 0..2 each, and the records of their
    boxes; also returns, per record image id, the 8x8 digit pasted in each box (in box order)."""
    images, targets = digits
    pool = np.flatnonzero(targets < 3)
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("digits_det")
    records, pasted = [], {}
    for i in range(8):
        canvas = rng.integers(0, 40, (72, 96), dtype=np.uint8)
        boxes, classes, sources = [], [], []
        for _ in range(int(rng.integers(1, 4))):
            size = int(rng.integers(18, 30))
            for _attempt in range(50):
                x, y = int(rng.integers(0, 96 - size)), int(rng.integers(0, 72 - size))
                if all(
                    x + size <= bx1 or x >= bx2 or y + size <= by1 or y >= by2 for bx1, by1, bx2, by2 in boxes
                ):
                    break
            else:
                continue
            k = int(rng.choice(pool))
            digit = cv2.resize(
                (images[k] * 15).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR
            )
            canvas[y : y + size, x : x + size] = np.maximum(canvas[y : y + size, x : x + size], digit)
            boxes.append((x, y, x + size, y + size))
            classes.append(int(targets[k]))
            sources.append(images[k])
        path = folder / f"canvas_{i:02d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        records.append(ImageRecord(path, i + 1, 96, 72, boxes, classes))
        pasted[i + 1] = np.stack(sources)
    return records, pasted


@pytest.fixture(scope="session")
def digits_folders(tmp_path_factory: pytest.TempPathFactory, digits: tuple[np.ndarray, np.ndarray]) -> Path:
    """A class-folders set: ``root/{train,val}/{zero,one,two}/*.png``, 32x32 upscaled real digits
    (first 30 of each class to train, next 10 to val)."""
    images, targets = digits
    root = tmp_path_factory.mktemp("digits_cls")
    for label, name in enumerate(DIGIT_NAMES):
        indices = np.flatnonzero(targets == label)
        for split, chosen in (("train", indices[:30]), ("val", indices[30:40])):
            for k in chosen:
                path = root / split / name / f"digit_{k:04d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), cv2.resize((images[k] * 15).astype(np.uint8), (32, 32)))
    (root / "data.yaml").write_text("train: train\nval: val\n")
    return root
