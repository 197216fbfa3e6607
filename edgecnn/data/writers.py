"""Write whole datasets (every split plus data.yaml) in any supported format.

Used by tests and synthetic data, and for converting a dataset: read it with
:func:`~edgecnn.data.load_split`, write it with :func:`write_dataset`. Images are copied
into the new layout under their own file names; two images bound for one name (or for names
that differ only in suffix or case) keep them apart with ``_2``, ``_3``, ... before the suffix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgecnn.data.coco import write_coco
from edgecnn.data.config import write_data_yaml
from edgecnn.data.folders import write_folders
from edgecnn.data.records import Format, ImageRecord
from edgecnn.data.voc import write_voc
from edgecnn.data.yolo import write_yolo


def write_split(
    records: Sequence[ImageRecord],
    names: Sequence[str],
    root: str | Path,
    split: str,
    format: Format,
    *,
    category_ids: Sequence[int] | None = None,
    placed: dict[Path, Path] | None = None,
) -> Path:
    """Write one split in ``format`` under ``root``; returns the path data.yaml should point at.

    ``category_ids`` is used by the COCO writer only. ``placed`` records the image names taken
    (:func:`~edgecnn.data._common.place_image`); pass one dict for all splits of a dataset, since
    VOC splits share one images folder.
    """
    placed = {} if placed is None else placed
    if format == "coco":
        return write_coco(records, names, root, split, category_ids=category_ids, placed=placed)
    if format == "yolo":
        return write_yolo(records, names, root, split, placed)
    if format == "voc":
        return write_voc(records, names, root, split, placed)
    if format == "folders":
        return write_folders(records, names, root, split, placed)
    raise ValueError(f"unknown format {format!r}")


def write_dataset(
    root: str | Path,
    splits: Mapping[str, Sequence[ImageRecord]],
    names: Sequence[str],
    format: Format,
    *,
    category_ids: Sequence[int] | None = None,
) -> Path:
    """Write every split (``{"train": records, "val": records}``) and ``root/data.yaml``.

    The data.yaml has no ``format:`` key, so reading it back goes through auto-detection.

    Returns:
        The data.yaml written.
    """
    root = Path(root)
    entries = {}
    placed: dict[Path, Path] = {}
    for split, records in splits.items():
        path = write_split(records, names, root, split, format, category_ids=category_ids, placed=placed)
        entries[split] = Path(os.path.relpath(path, root)).as_posix()
    return write_data_yaml(root / "data.yaml", names, entries)
