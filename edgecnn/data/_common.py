"""Helpers shared by the format readers and writers: bad-entry collection, box checks, paths."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from edgecnn.data.imagesize import IMAGE_SUFFIXES
from edgecnn.errors import DataError

#: How far (pixels) a box may reach past the image border before it is an error; boxes
#: within the tolerance are clipped to the image.
BOX_TOLERANCE_PX = 1.0


class Issues:
    """Raises bad-entry errors, or with ``skip_bad`` records them and lets the reader go on."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: list[str] = []

    def add(self, error: DataError) -> None:
        """Raise ``error``, or remember it when skipping bad entries."""
        if not self.skip_bad:
            raise error
        self.skipped.append(str(error))


def abspath(path: str | Path) -> Path:
    """Absolute, normalised path without resolving symlinks (the images -> labels rule needs the
    path as the user laid it out)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def box_problem(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> str | None:
    """Why a pixel ``xyxy`` box is not valid ground truth in a ``width`` x ``height`` image, or None."""
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return "has a non-finite coordinate"
    if x2 <= x1 or y2 <= y1:
        return "has zero or negative size"
    tol = BOX_TOLERANCE_PX
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        return f"outside the {width}x{height} image"
    return None


def clip_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> list[float]:
    """Clip a box that passed :func:`box_problem` to the image."""
    return [
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    ]


def fmt_num(value: float) -> str:
    """A coordinate for a text file: an integer when it is one, else up to 4 decimals."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0")


def fmt_box(values: Iterable[float]) -> str:
    """``[1, 2.5, 30, 40]`` for messages."""
    return "[" + ", ".join(fmt_num(v) for v in values) + "]"


def place_image(src: Path, dst: Path, placed: dict[Path, Path]) -> None:
    """Copy an image into a dataset being written, refusing two sources for one destination."""
    previous = placed.setdefault(dst, src)
    if previous != src:
        raise ValueError(f"images {previous} and {src} would both be written to {dst}; rename one")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if abspath(src) != abspath(dst):
        shutil.copyfile(src, dst)


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, following symlinks, skipping hidden entries)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(
            Path(dirpath, f)
            for f in filenames
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
        )
    return sorted(found, key=str)


def names_hint(names: list[str]) -> str:
    """``(0..2: cat, dog, bird)`` for unknown-class messages; long lists are shortened."""
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    return f"(0..{len(names) - 1}: {shown})"
