"""Tell a split's format from what its path points at.

The rules, first match wins:

1. a ``.json`` file -> ``coco``;
2. a ``.txt`` file in ``ImageSets/Main/`` -> ``voc``; any other ``.txt`` file -> ``yolo``
   (a list of image paths);
3. a folder with ``Annotations/`` and ``JPEGImages/`` (or ``annotations/`` holding ``.xml``
   and ``images/``, a common Kaggle layout) -> ``voc``;
4. a folder with an ``images/`` sub-folder, a folder named ``images``, or a folder whose
   path has an ``images`` part with a matching ``labels`` folder -> ``yolo``;
5. a folder holding images and ``.xml`` files side by side (Roboflow's and LabelImg's
   Pascal VOC layout) -> ``voc``;
6. a folder below an ``images`` folder holding images but no ``labels`` twin -> ``yolo``
   (images without objects); a folder holding images and ``.txt`` files side by side
   (Darknet, CVAT's "YOLO 1.1") -> ``yolo``;
7. a folder holding sub-folders and no images of its own -> ``folders``.

Anything else is an error; ``format:`` in data.yaml skips detection.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.data._common import is_junk
from edgecnn.data._files import path_kind
from edgecnn.data.imagesize import is_image_file
from edgecnn.data.records import Format
from edgecnn.data.voc import voc_folders
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
    if voc_folders(path) is not None:
        return "voc"
    labels = label_path(path / "x.jpg").parent  # == path when no part of it is named images
    if (path / "images").is_dir() or path.name == "images" or (labels != path and labels.is_dir()):
        return "yolo"
    try:
        entries = [p for p in path.iterdir() if not is_junk(p.name)]
    except OSError as exc:
        raise DataError(path, f"cannot list the folder: {exc.strerror or exc}") from None
    files = [p for p in entries if path_kind(p) == "file"]
    has_images = any(is_image_file(p) for p in files)
    if has_images and any(p.suffix.lower() == ".xml" for p in files):
        return "voc"
    if has_images and labels != path:  # images/test with no labels/ twin: all background
        return "yolo"
    if has_images and any(p.suffix.lower() == ".txt" for p in files):
        return "yolo"  # Darknet / CVAT "YOLO 1.1": labels beside the images
    folders = sorted(p.name for p in entries if path_kind(p) == "folder")
    if folders and not has_images:
        return "folders"
    if folders:  # class folders with a stray image beside them, as zips and copies leave them
        loose = sorted(p.name for p in files if is_image_file(p))
        raise DataError(
            path,
            f"cannot tell the dataset format: sub-folders ({_few(folders)}) and {len(loose)} image(s) "
            f"of its own ({_few(loose)}); for class folders move the images into their class "
            "folder, or set format: folders in data.yaml to leave them out",
        )
    raise DataError(
        path,
        "cannot tell the dataset format: expected a COCO .json file, a YOLO images/ folder (labels in "
        "a sibling labels/ folder), a Pascal VOC folder (Annotations/, JPEGImages/) or one sub-folder "
        "per class; or set format: in data.yaml",
    )


def _few(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` names, then how many more."""
    more = f", ... ({len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
