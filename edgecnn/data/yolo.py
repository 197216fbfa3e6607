"""Ultralytics YOLO text labels: reader and writer.

A split is a folder of images (``images/train``, or a folder that contains ``images/``) or
a ``.txt`` file listing image paths (relative lines resolve against the list's folder).
Each image's labels are at the same path with the last ``images`` folder replaced by
``labels`` and the suffix by ``.txt`` (``images/train/a.jpg`` -> ``labels/train/a.txt``;
an image with no ``images`` folder in its path has its ``.txt`` beside it). A missing label
file means no objects; a label path that is a folder is an error. One object per line:
``class cx cy w h``, coordinates normalised to 0..1 by the image width and height, or a polygon
``class x1 y1 x2 y2 x3 y3 ...`` (segmentation labels), read as its bounding box as Ultralytics
does. Exact duplicate lines are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from edgecnn.data._common import (
    DROPPED,
    Issues,
    abspath,
    box_problem,
    clip_box,
    fmt_box,
    list_images,
    names_hint,
    place_image,
)
from edgecnn.data._files import path_kind, unicode_forms
from edgecnn.data.imagesize import read_image_size
from edgecnn.data.records import ImageRecord
from edgecnn.errors import DataError

logger = logging.getLogger(__name__)


def label_path(image: Path) -> Path:
    """The label file of an image: the last ``images`` folder becomes ``labels``, suffix ``.txt``."""
    parts = image.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            return Path(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")
    return image.with_suffix(".txt")


def read_yolo(
    sources: Sequence[Path],
    names: list[str],
    issues: Issues,
    *,
    root: Path | None = None,
    keypoint_values: int = 0,
) -> list[ImageRecord]:
    """Read a YOLO split from image folders and/or image list files.

    Images are numbered 1, 2, ... in sorted path order over all ``sources``. A relative line of
    a list file is looked up beside the list, then under ``root`` (the dataset root).
    ``keypoint_values`` > 0 reads pose labels (``class cx cy w h`` then that many keypoint
    values, from data.yaml ``kpt_shape``): the box is kept, the keypoints are not.
    """
    images: dict[Path, DataError | None] = {}  # image -> the error found while listing it
    for source in sources:
        if source.is_file():
            images.update(_listed_images(source, root))
        else:
            folder = source / "images" if (source / "images").is_dir() else source
            images.update(dict.fromkeys(list_images(folder)))
    records = []
    for image_id, image in enumerate(sorted(images, key=str), start=1):
        try:
            if images[image] is not None:
                raise images[image]
            records.append(_record(image, image_id, names, issues, keypoint_values))
        except DataError as exc:
            issues.add(exc)
    if records and not any(label_path(r.path).is_file() for r in records):
        logger.warning(
            "no label file for any of the %d images (the first would be %s): read as images without objects",
            len(records),
            label_path(records[0].path),
        )
    return records


def _listed_images(list_file: Path, root: Path | None) -> dict[Path, DataError | None]:
    if list_file.suffix.lower() != ".txt":
        raise DataError(list_file, "a YOLO split must be an images folder or a .txt list of image paths")
    found: dict[Path, DataError | None] = {}
    for n, line in enumerate(_read_lines(list_file), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        image = _listed_path(list_file.parent, root if not entry.startswith("./") else None, entry)
        kind = path_kind(image)
        problem = None if kind == "file" else "not found" if kind == "missing" else f"is a {kind}, not a file"
        found[image] = DataError(list_file, f"image {image} {problem}", f"line {n}") if problem else None
    return found


def _listed_path(here: Path, root: Path | None, entry: str) -> Path:
    """A list entry's image: relative to the list's folder, else to the dataset root (if
    given), each also in both Unicode forms; the first candidate when none exists."""
    bases = [here] if root is None else [here, root]
    for base in bases:
        for name in unicode_forms(entry):
            if path_kind(base / name) != "missing":
                return abspath(base / name)
    return abspath(here / entry)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None


def _record(
    image: Path, image_id: int, names: list[str], issues: Issues, keypoint_values: int
) -> ImageRecord:
    width, height = read_image_size(image)
    labels = label_path(image)
    boxes, class_ids = [], []
    seen: set[tuple[float, ...]] = set()
    kind = path_kind(labels)
    if kind not in ("file", "missing"):  # its boxes would be lost, the image read as background
        raise DataError(labels, f"the label file is a {kind}, not a file")
    lines = _read_lines(labels) if kind == "file" else []
    for n, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"line {n}"
        values = _parse_line(fields, labels, where, keypoint_values)
        if tuple(values) in seen:  # an exact duplicate, as Ultralytics removes them
            continue
        seen.add(tuple(values))
        cls = values[0]
        if not cls.is_integer() or not 0 <= cls < len(names):
            raise DataError(labels, f"class {fields[0]} not in names {names_hint(names)}", where)
        if len(values) == 5:
            cx, cy, w, h = values[1:]
            corners = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            shown = f"box {fmt_box(values[1:])} (normalised cx cy w h)"
        else:  # a polygon: its bounding box, as Ultralytics' segments2boxes
            xs, ys = values[1::2], values[2::2]
            corners = [min(xs), min(ys), max(xs), max(ys)]
            shown = f"polygon with bounding box {fmt_box(corners)} (normalised x1 y1 x2 y2)"
        x1, y1, x2, y2 = corners[0] * width, corners[1] * height, corners[2] * width, corners[3] * height
        problem = box_problem(x1, y1, x2, y2, width, height)
        if problem:
            hint = "; YOLO coordinates are normalised to 0..1" if max(values[1:]) > 1.5 else ""
            raise DataError(labels, f"{shown} {problem}{hint}", where)
        box = clip_box(x1, y1, x2, y2, width, height)
        if box is None:
            issues.drop(labels, f"{shown} {DROPPED}", where)
            continue
        boxes.append(box)
        class_ids.append(int(cls))
    return ImageRecord(image, image_id, width, height, boxes, class_ids)


def _parse_line(fields: list[str], labels: Path, where: str, keypoint_values: int) -> list[float]:
    """The numbers of a label line: ``class cx cy w h`` or a polygon ``class x1 y1 x2 y2 ...``;
    for pose labels the box only."""
    if keypoint_values:
        if len(fields) != 5 + keypoint_values:
            raise DataError(
                labels,
                f"expected {5 + keypoint_values} values (class cx cy w h and the {keypoint_values} "
                f"keypoint values of kpt_shape), got {len(fields)}",
                where,
            )
        fields = fields[:5]
    if len(fields) == 6:
        raise DataError(
            labels,
            "6 values: a trailing confidence makes this a prediction, not ground truth "
            "(expected class cx cy w h)",
            where,
        )
    if len(fields) > 6 and len(fields) % 2 == 0:
        raise DataError(labels, f"a polygon needs x y pairs, got {len(fields) - 1} coordinates", where)
    if len(fields) < 5:
        raise DataError(
            labels,
            f"expected 5 values (class cx cy w h) or a polygon (class x1 y1 x2 y2 x3 y3 ...), "
            f"got {len(fields)}",
            where,
        )
    try:
        return [float(v) for v in fields]
    except ValueError:
        raise DataError(labels, f"not a number in {' '.join(fields)!r}", where) from None


def write_yolo(
    records: Sequence[ImageRecord],
    names: Sequence[str],
    root: str | Path,
    split: str = "val",
    placed: dict[Path, Path] | None = None,
) -> Path:
    """Write records as ``root/images/<split>/`` (copied images) and ``root/labels/<split>/*.txt``.

    Every image gets a label file, empty for an image without objects. ``difficult`` and
    ``iscrowd`` have no place in the format and are dropped.

    Images are copied under their own names, a clash renamed (see :func:`place_image`; pass one
    ``placed`` dict for every split of a dataset).

    Returns:
        The images folder (the split's entry for data.yaml).
    """
    root = Path(root)
    images_dir = root / "images" / split
    placed = {} if placed is None else placed
    for record in records:
        image = place_image(record.path, images_dir / record.path.name, placed)
        lines = []
        for box, cls in zip(record.boxes, record.class_ids, strict=True):
            if not 0 <= cls < len(names):
                raise ValueError(f"{record.path}: class {cls} not in names (0..{len(names) - 1})")
            x1, y1, x2, y2 = (float(v) for v in box)
            cx, cy = (x1 + x2) / 2 / record.width, (y1 + y2) / 2 / record.height
            w, h = (x2 - x1) / record.width, (y2 - y1) / record.height
            lines.append(f"{int(cls)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        labels = label_path(image)
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("".join(lines), encoding="utf-8")
    return images_dir
