"""Classification as one sub-folder per class (``train/cat/1.jpg``): reader and writer.

Class order is data.yaml ``names`` when given, else the sorted folder names. Images are
found recursively inside each class folder; hidden files and folders are ignored, and so are
the folders operating systems leave behind (``__MACOSX``, ``@eaDir``; see
:data:`~edgecnn.data._common.JUNK_FOLDERS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgecnn.data._common import Issues, is_junk, list_images, names_hint, place_image
from edgecnn.data._files import path_kind
from edgecnn.data.imagesize import read_image_size
from edgecnn.data.records import ImageRecord
from edgecnn.errors import DataError


def class_folders(root: Path) -> list[Path]:
    """The sub-folders of ``root`` that can be classes (not hidden, not junk), sorted by name.

    Raises:
        DataError: ``root`` cannot be listed (no permission).
    """
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise DataError(root, f"cannot list the folder: {exc.strerror or exc}") from None
    folders = (p for p in entries if not is_junk(p.name) and path_kind(p) == "folder")
    return sorted(folders, key=lambda p: p.name)


def read_folders(
    sources: Sequence[Path], names: list[str] | None, issues: Issues
) -> tuple[list[ImageRecord], list[str]]:
    """Read a class-folders split.

    Images are numbered 1, 2, ... in sorted path order over all ``sources``.

    Returns:
        ``(records, names)``; ``names`` are the sorted folder names when not given.
    """
    folders: list[Path] = []
    for source in sources:
        if not source.is_dir():
            raise DataError(source, "a class-folders split must be a folder with one sub-folder per class")
        folders += class_folders(source)
    if names is None:
        names = sorted({f.name for f in folders})
    images = sorted(
        ((image, folder) for folder in folders for image in list_images(folder)), key=lambda e: str(e[0])
    )
    records = []
    for image_id, (image, folder) in enumerate(images, start=1):
        try:
            if folder.name not in names:
                raise DataError(
                    folder, f"folder '{folder.name}' is not a class in names {names_hint(names)}", image.name
                )
            width, height = read_image_size(image)
            records.append(ImageRecord(image, image_id, width, height, label=names.index(folder.name)))
        except DataError as exc:
            issues.add(exc)
    return records, names


def write_folders(
    records: Sequence[ImageRecord],
    names: Sequence[str],
    root: str | Path,
    split: str = "val",
    placed: dict[Path, Path] | None = None,
) -> Path:
    """Copy labelled images to ``root/<split>/<class name>/`` (a name clash renamed, see
    :func:`place_image`).

    Returns:
        The split folder (the split's entry for data.yaml).
    """
    split_dir = Path(root) / split
    placed = {} if placed is None else placed
    for name in names:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"class name {name!r} cannot be a folder name")
        (split_dir / name).mkdir(parents=True, exist_ok=True)  # empty classes keep their folder
    for record in records:
        if record.label is None or not 0 <= record.label < len(names):
            raise ValueError(f"{record.path}: label {record.label} not in names (0..{len(names) - 1})")
        place_image(record.path, split_dir / names[record.label] / record.path.name, placed)
    return split_dir
