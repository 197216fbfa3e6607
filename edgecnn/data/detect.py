"""Tell a split's format from what its path points at.

The rules, first match wins:

1. a ``.json`` file -> ``coco``;
2. a ``.txt`` file in ``ImageSets/Main/`` -> ``voc``; any other ``.txt`` file -> ``yolo``
   (a list of image paths);
3. a folder with ``Annotations/`` and ``JPEGImages/`` -> ``voc``;
4. a folder with an ``images/`` sub-folder, a folder named ``images``, or a folder whose
   path has an ``images`` part with a matching ``labels`` folder -> ``yolo``;
5. a folder holding sub-folders and no images of its own -> ``folders``.

Anything else is an error; ``format:`` in data.yaml skips detection.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.data.imagesize import is_image_file
from edgecnn.data.records import Format
from edgecnn.data.yolo import label_path
from edgecnn.errors import DataError


def detect_format(path: Path) -> Format:
    """The format of the split at ``path`` (see the module docstring for the rules).

    Raises:
        DataError: the path matches no format.
    """
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return "coco"
        if suffix == ".txt":
            return "voc" if path.parent.name == "Main" and path.parent.parent.name == "ImageSets" else "yolo"
        raise DataError(
            path, "cannot tell the dataset format: a split file must be COCO .json or a .txt list"
        )
    if (path / "Annotations").is_dir() and (path / "JPEGImages").is_dir():
        return "voc"
    labels = label_path(path / "x.jpg").parent  # == path when no part of it is named images
    if (path / "images").is_dir() or path.name == "images" or (labels != path and labels.is_dir()):
        return "yolo"
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if any(p.is_dir() for p in entries) and not any(p.is_file() and is_image_file(p) for p in entries):
        return "folders"
    raise DataError(
        path,
        "cannot tell the dataset format: expected a COCO .json file, a YOLO images/ folder (labels in "
        "a sibling labels/ folder), a Pascal VOC folder (Annotations/, JPEGImages/) or one sub-folder "
        "per class; or set format: in data.yaml",
    )
