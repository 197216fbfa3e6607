"""Helpers shared by the format readers and writers: bad-entry collection, box checks, paths."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from edgecnn.data.imagesize import IMAGE_SUFFIXES, read_image_info
from edgecnn.errors import DataError

#: How far (pixels) a box may reach past the image border before it is an error; boxes
#: within the tolerance are clipped to the image.
BOX_TOLERANCE_PX = 1.0

#: Folders that operating systems and NAS boxes leave in datasets: never classes, never images
#: (macOS zip archives add ``__MACOSX/`` with a ``._`` file per image; Synology adds ``@eaDir/``).
#: Hidden folders (``.git``, ``.ipynb_checkpoints``) are skipped as well.
JUNK_FOLDERS = frozenset({"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information"})


def is_junk(name: str) -> bool:
    """Whether a file or folder name is hidden or one of :data:`JUNK_FOLDERS`."""
    return name.startswith(".") or name in JUNK_FOLDERS


class Issues:
    """Raises bad-entry errors, or with ``skip_bad`` records them and lets the reader go on.

    Also collects boxes dropped on purpose (zero width or height): those are not errors, real
    exports contain them, and every reader leaves them out the same way.
    """

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: list[str] = []
        self.dropped: list[str] = []

    def add(self, error: DataError) -> None:
        """Raise ``error``, or remember it when skipping bad entries."""
        if not self.skip_bad:
            raise error
        self.skipped.append(str(error))

    def drop(self, path: Path, message: str, entry: str) -> None:
        """Remember a box left out on purpose (``message`` says which and why)."""
        self.dropped.append(str(DataError(path, message, entry)))


def abspath(path: str | Path) -> Path:
    """Absolute, normalised path without resolving symlinks (the images -> labels rule needs the
    path as the user laid it out)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def box_problem(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> str | None:
    """Why a pixel ``xyxy`` box is not valid ground truth in a ``width`` x ``height`` image, or None."""
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return "has a non-finite coordinate"
    if x2 < x1 or y2 < y1:
        return "has negative size"
    tol = BOX_TOLERANCE_PX
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        return f"outside the {width}x{height} image"
    return None


def clip_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> list[float] | None:
    """Clip a box that passed :func:`box_problem` to the image; None when nothing is left
    (zero width or height, before or after clipping: the box is dropped, not an error)."""
    box = [
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    ]
    return box if box[2] > box[0] and box[3] > box[1] else None


#: Why a box that :func:`clip_box` returned None for is left out (for :meth:`Issues.drop`).
DROPPED = "has zero width or height inside the image; dropped"


def check_annotated_size(
    image: Path, width: int, height: int, path: Path, entry: str, what: str
) -> tuple[int, int]:
    """The image size to use when an annotation file states one: the file's own, decoded size,
    which must agree with the stated one.

    Raises:
        DataError: the sizes differ (the boxes would be scaled or rotated wrongly). When the
            stated size is the file's stored size before an EXIF rotation by 90 degrees, the
            message says so: the tool drew the boxes on pixels that training never sees.
    """
    info = read_image_info(image)
    if (width, height) == (info.width, info.height):
        return width, height
    if info.orientation in (5, 6, 7, 8) and (width, height) == (info.height, info.width):
        raise DataError(
            path,
            f"{what} gives {width}x{height}, the stored size of {image}, but its EXIF orientation "
            f"{info.orientation} turns it to {info.width}x{info.height} when decoded (cv2.imread, "
            "training), so the boxes were drawn on the unrotated image (LabelImg does this); remove "
            "the tag so the image decodes as it was annotated (exiftool -Orientation= FILE)",
            entry,
        )
    raise DataError(
        path, f"{what} gives {width}x{height} but the image {image} is {info.width}x{info.height}", entry
    )


def fmt_num(value: float) -> str:
    """A coordinate for a text file: an integer when it is one, else up to 4 decimals."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0")


def fmt_box(values: Iterable[float]) -> str:
    """``[1, 2.5, 30, 40]`` for messages."""
    return "[" + ", ".join(fmt_num(v) for v in values) + "]"


def place_image(src: Path, dst: Path, placed: dict[Path, Path]) -> Path:
    """Copy an image into a dataset being written; returns the path it was written to.

    Two different images bound for one folder under names that differ at most in suffix or
    case (``IMG_1.JPG`` from two sub-folders or two pooled splits; ``a.jpg`` and ``a.png``, whose
    label or annotation files would be one) do not overwrite each other: the first keeps its
    name, the next get ``_2``, ``_3``, ... before the suffix (``IMG_1_2.JPG``). ``placed`` maps
    the names taken so far to their sources; pass the same dict for every image of a folder.
    """
    target, n = dst, 1
    while placed.setdefault(target.with_name(target.stem.casefold()), src) != src:
        n += 1
        target = dst.with_name(f"{dst.stem}_{n}{dst.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if abspath(src) != abspath(target):
        shutil.copyfile(src, target)
    return target


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, following symlinks, skipping hidden entries
    and :data:`JUNK_FOLDERS`).

    Raises:
        DataError: a folder in there cannot be listed (its images would go missing unseen).
    """

    def unlistable(exc: OSError) -> None:
        raise DataError(exc.filename or folder, f"cannot list the folder: {exc.strerror or exc}")

    found = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=unlistable, followlinks=True):
        dirnames[:] = [d for d in dirnames if not is_junk(d)]
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
