"""Write whole datasets (every split plus data.yaml) in any supported format.

Used by tests and synthetic data, and for converting a dataset: read it with
:func:`~edgecnn.data.load_split`, write it with :func:`write_dataset`. Images are copied
into the new layout under their own file names.
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
) -> Path:
    """Write one split in ``format`` under ``root``; returns the path data.yaml should point at.

    ``category_ids`` is used by the COCO writer only.
    """
    if format == "coco":
        return write_coco(records, names, root, split, category_ids=category_ids)
    if format == "yolo":
        return write_yolo(records, names, root, split)
    if format == "voc":
        return write_voc(records, names, root, split)
    if format == "folders":
        return write_folders(records, names, root, split)
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
    for split, records in splits.items():
        path = write_split(records, names, root, split, format, category_ids=category_ids)
        entries[split] = Path(os.path.relpath(path, root)).as_posix()
    return write_data_yaml(root / "data.yaml", names, entries)
