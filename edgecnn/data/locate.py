"""Say what to give instead when a folder is given where a data.yaml is expected.

``--data`` takes a data.yaml (the Ultralytics convention), never a folder. A folder is a
common slip: the dataset's folder instead of the file in it, or a dataset that has no
data.yaml yet. :func:`require_data_yaml` refuses it in one line that says what to pass: the
YAML file in the folder when there is one, else the data.yaml lines that describe the layout
found there (class folders, YOLO, Pascal VOC, COCO), so the user can write it and go on.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.data._files import path_kind
from edgecnn.data.detect import detect_format
from edgecnn.data.folders import class_folders
from edgecnn.data.imagesize import is_image_file
from edgecnn.errors import DataError, UserError

#: Names of the validation split folder, in the order they are looked for (Roboflow: ``valid``).
VAL_FOLDERS = ("val", "valid", "validation")
#: Most YAML files named in a "did you mean" hint.
_SHOWN = 3


def require_data_yaml(path: Path, flag: str = "--data") -> None:
    """Refuse a folder given as ``flag``, saying what to give instead (:func:`folder_hint`).

    Anything but a folder passes (a missing or unreadable file is reported by the loader).

    Raises:
        UserError: ``path`` is a folder.
    """
    if path_kind(path) == "folder":
        raise UserError(f"{flag} {path}: a folder, not a data.yaml; {folder_hint(path)}")


def folder_hint(folder: Path) -> str:
    """What to pass instead of ``folder``, one clause: the YAML file in it, or the data.yaml
    lines for the dataset layout it holds, or where the format is described."""
    yamls = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    preferred = [p for p in yamls if p.name in ("data.yaml", "data.yml")]
    if preferred or len(yamls) == 1:
        return f"did you mean {(preferred or yamls)[0]}?"
    if yamls:
        shown = ", ".join(str(p) for p in yamls[:_SHOWN]) + (", ..." if len(yamls) > _SHOWN else "")
        return f"did you mean one of {shown}?"
    layout = _layout(folder)
    if layout is None:
        return "pass the dataset's data.yaml (train:, val: and names:; see docs/datasets.md)"
    fmt, splits = layout
    lines = [f"{key}: {value}" for key, value in splits.items()]
    if fmt in ("yolo", "voc"):  # class folders and COCO files name their classes; YOLO labels are numbers
        lines.append(f"names: {_names(folder)}")
    described = {
        "folders": "one folder per class",
        "yolo": "a YOLO dataset",
        "voc": "a Pascal VOC dataset",
        "coco": "a COCO dataset",
    }
    if "val" not in splits:
        return (
            f"it holds {described[fmt]} without a val split: write {folder / 'data.yaml'} with "
            f"`{'`, `'.join(lines)}`, then make train/val splits with `edgecnn data split "
            f"{folder / 'data.yaml'} --out NEW_FOLDER`"
        )
    entries = "`, `".join(lines)
    return f"it holds {described[fmt]}: write {folder / 'data.yaml'} with `{entries}` and pass that"


def _layout(folder: Path) -> tuple[str, dict[str, str]] | None:
    """The format and the data.yaml split entries (relative to ``folder``) of the dataset in
    ``folder``; None when no layout is recognised."""
    # Pascal VOC: split lists in ImageSets/Main.
    main = folder / "ImageSets" / "Main"
    if (folder / "Annotations").is_dir() and main.is_dir():
        splits = {
            key: f"ImageSets/Main/{name}.txt"
            for key, name in (("train", "train"), ("val", "val"), ("test", "test"))
            if (main / f"{name}.txt").is_file()
        }
        if "train" not in splits and (main / "trainval.txt").is_file():
            splits["train"] = "ImageSets/Main/trainval.txt"
        if splits:
            return "voc", splits
    # COCO: annotations/instances_train.json, ... (one JSON file per split).
    coco = _coco_files(folder / "annotations", "annotations/")
    if "train" in coco:
        return "coco", coco
    # Ultralytics: images/train, images/val (labels/ beside images/).
    images = folder / "images"
    if images.is_dir() and (images / "train").is_dir():
        splits = {"train": "images/train"}
        val = next((name for name in VAL_FOLDERS if (images / name).is_dir()), None)
        if val is not None:
            splits["val"] = f"images/{val}"
        return "yolo", splits
    # One folder per split (Roboflow, class-folder datasets): train/, val/ or valid/, test/.
    if (folder / "train").is_dir():
        coco = {}  # Roboflow's COCO export: train/_annotations.coco.json
        for key, name in (("train", "train"), *(("val", v) for v in VAL_FOLDERS), ("test", "test")):
            found = _coco_files(folder / name, f"{name}/", key) if key not in coco else {}
            coco.update(found)
        if "train" in coco:
            return "coco", coco
        fmt = _format(folder / "train")
        if fmt is not None:
            splits = {"train": _split_entry(folder, "train")}
            val = next((name for name in VAL_FOLDERS if (folder / name).is_dir()), None)
            if val is not None:
                splits["val"] = _split_entry(folder, val)
            if (folder / "test").is_dir():
                splits["test"] = _split_entry(folder, "test")
            return fmt, splits
    # The folder is itself one split: class folders (holding images), or images with labels.
    fmt = _format(folder)
    if fmt == "folders" and not any(
        is_image_file(image) for sub in class_folders(folder) for image in sub.iterdir()
    ):
        return None  # folders, but none holds an image: not a dataset seen from here
    return (fmt, {"train": "."}) if fmt is not None else None


def _coco_files(folder: Path, prefix: str, split: str | None = None) -> dict[str, str]:
    """Split -> ``prefix + file`` of the COCO JSON files in ``folder``: the one file there for
    ``split``, else each split named in a file name (``instances_val2017.json``)."""
    if not folder.is_dir():
        return {}
    files = sorted(p.name for p in folder.glob("*.json"))
    if split is not None:
        return {split: prefix + files[0]} if len(files) == 1 else {}
    found: dict[str, str] = {}
    for key, words in (("train", ("train",)), ("val", VAL_FOLDERS), ("test", ("test",))):
        match = next((f for f in files if any(w in f.lower() for w in words)), None)
        if match is not None:
            found[key] = prefix + match
    return found


def _split_entry(folder: Path, name: str) -> str:
    """``train/images`` for a Roboflow YOLO export's split folder, else ``train``."""
    return f"{name}/images" if (folder / name / "images").is_dir() else name


def _format(path: Path) -> str | None:
    try:
        return detect_format(path)
    except DataError:
        return None


def _names(folder: Path) -> str:
    """The class list for a hint: from ``classes.txt`` (LabelImg, many YOLO exports) when there
    is one, else a placeholder."""
    classes = folder / "classes.txt"
    if classes.is_file():
        try:
            text = classes.read_text(encoding="utf-8")
            names = [line.strip() for line in text.splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError):
            names = []
        if names:
            return "[" + ", ".join(names) + "]"
    return "[CLASS_0, CLASS_1, ...] (in label-id order)"
