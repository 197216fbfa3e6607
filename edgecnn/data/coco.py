"""COCO detection JSON (``images``, ``annotations``, ``categories``): reader and writer.

Image ids are the file's own. An image's ``file_name`` is looked up, in order, next to the
JSON file, in ``images/`` beside it, in the folder above, in ``images/`` there, and in the
folder named after the JSON file's split (``annotations/instances_val2017.json`` ->
``val2017/`` or ``images/val2017/``, the official COCO and the Ultralytics layouts).
Backslashes count as ``/``; a name that is not found (a path on the labelling machine, such
as ``C:\\work\\images\\val\\cat\\1.jpg``) is looked up by ever shorter tails of it
(``images/val/cat/1.jpg``, ... ``1.jpg``), each also in Unicode's composed and decomposed
forms (macOS writes ``é`` in file names as ``e`` and an accent).

Categories are matched to data.yaml ``names`` by name; without ``names`` the classes are
the categories sorted by id (leaving out an unused category that is only the supercategory of
others: Roboflow's project category 0). A class in ``names`` that the file has no category
for gets a fresh category id above the file's largest.

An image's ``width`` and ``height``, when given, must be those of the file as decoded (EXIF
orientation applied); boxes of zero width or height are dropped and counted; ``iscrowd`` is
kept per box; segmentations and ``area`` are not used.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecnn.data._common import (
    DROPPED,
    Issues,
    abspath,
    box_problem,
    check_annotated_size,
    clip_box,
    fmt_box,
    names_hint,
    place_image,
)
from edgecnn.data._files import path_kind, unicode_forms
from edgecnn.data.imagesize import read_image_size
from edgecnn.data.records import ImageRecord
from edgecnn.errors import DataError


def read_coco(
    json_path: Path, names: list[str] | None, issues: Issues
) -> tuple[list[ImageRecord], list[str], list[int]]:
    """Read a COCO detection file.

    Args:
        json_path: the annotation file.
        names: class names from data.yaml, or None to take the categories sorted by id.
        issues: raises bad entries, or collects them when skipping.

    Returns:
        ``(records sorted by image id, names, category_ids)``.
    """
    if not json_path.is_file():
        raise DataError(json_path, "a COCO split must be a .json annotation file")
    doc = _load_json(json_path)
    categories = _categories(doc, json_path)
    if names is None:
        classes = _class_categories(doc, categories)
        names = [name for _, name in sorted(classes.items())]
        category_ids = sorted(classes)
    else:
        by_name = {name: cid for cid, name in categories.items()}
        fresh = iter(range(max(categories, default=0) + 1, 1 << 31))
        category_ids = [by_name[n] if n in by_name else next(fresh) for n in names]
    class_of = {cid: i for i, cid in enumerate(category_ids) if cid in categories}

    entries = _image_entries(doc, json_path, issues)
    annotations = _annotations_by_image(doc, json_path, entries, issues)
    finder = _ImageFinder(json_path)
    records = []
    for image_id in sorted(entries):
        try:
            records.append(
                _record(
                    json_path,
                    entries[image_id],
                    annotations[image_id],
                    finder,
                    (categories, class_of, names),
                    issues,
                )
            )
        except DataError as exc:
            issues.add(exc)
    return records, names, category_ids


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8-sig") as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON: {exc.msg}", f"line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # the decoder recurses once per level of [ or {
        raise DataError(path, "malformed JSON: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise DataError(path, f"malformed JSON: {str(exc).split(';')[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DataError(path, "not a COCO file: no 'images' list at the top level")
    if not isinstance(doc.get("categories"), list):
        raise DataError(path, "not a COCO detection file: no 'categories' list at the top level")
    if not isinstance(doc.get("annotations", []), list):
        raise DataError(path, "'annotations' is not a list")
    return doc


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: object) -> object:
    """``640.0`` -> ``640`` (some converters write sizes as floats); anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _categories(doc: dict[str, Any], path: Path) -> dict[int, str]:
    categories: dict[int, str] = {}
    for i, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise DataError(path, "a category needs an integer 'id' and a string 'name'", f"categories[{i}]")
        if cat["id"] in categories:
            raise DataError(path, f"duplicate category id {cat['id']}", f"categories[{i}]")
        if cat["name"] in categories.values():
            raise DataError(path, f"duplicate category name '{cat['name']}'", f"category id {cat['id']}")
        categories[cat["id"]] = cat["name"]
    return categories


def _class_categories(doc: dict[str, Any], categories: dict[int, str]) -> dict[int, str]:
    """The categories that are classes: all but an unused one that only names the supercategory
    of others (Roboflow exports add the project as category 0, the parent of the real ones)."""
    used = {
        ann.get("category_id")
        for ann in doc.get("annotations", [])
        if isinstance(ann, dict) and _is_int(ann.get("category_id"))
    }
    parents = set()
    for cat in doc["categories"]:
        parent = cat.get("supercategory")
        if isinstance(parent, str) and parent not in ("", "none", cat["name"]):
            parents.add(parent)
    return {cid: name for cid, name in categories.items() if cid in used or name not in parents}


def _image_entries(doc: dict[str, Any], path: Path, issues: Issues) -> dict[int, dict[str, Any]]:
    entries: dict[int, dict[str, Any]] = {}
    for i, image in enumerate(doc["images"]):
        if not isinstance(image, dict) or not _is_int(image.get("id")):
            issues.add(DataError(path, "an image needs an integer 'id'", f"images[{i}]"))
        elif not isinstance(image.get("file_name"), str) or not image["file_name"]:
            issues.add(DataError(path, "an image needs a 'file_name'", f"image id {image['id']}"))
        elif image["id"] in entries:
            issues.add(DataError(path, f"duplicate image id {image['id']}", f"images[{i}]"))
        else:
            entries[image["id"]] = image
    return entries


def _annotations_by_image(
    doc: dict[str, Any], path: Path, entries: dict[int, dict[str, Any]], issues: Issues
) -> dict[int, list[dict[str, Any]]]:
    listed = {image["id"] for image in doc["images"] if isinstance(image, dict) and _is_int(image.get("id"))}
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, ann in enumerate(doc.get("annotations", [])):
        where = f"annotation id {ann['id']}" if isinstance(ann, dict) and "id" in ann else f"annotations[{i}]"
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if not _is_int(image_id):
            issues.add(DataError(path, "an annotation needs an integer 'image_id'", where))
        elif image_id in entries:
            by_image[image_id].append(ann)
        elif image_id not in listed:  # annotations of an image already reported are dropped quietly
            issues.add(DataError(path, f"image id {image_id} is not in 'images'", where))
    return by_image


class _ImageFinder:
    """Finds ``file_name`` in the folders common exports use, trying the last hit first."""

    def __init__(self, json_path: Path) -> None:
        here, up = json_path.parent, json_path.parent.parent
        stem = json_path.stem
        splits = [stem.split("_", 1)[-1], stem.rsplit("_", 1)[-1]] if "_" in stem else []
        candidates = [here, here / "images", up, up / "images"]
        for split in splits:
            candidates += [up / split, up / "images" / split]
        self.folders = list(dict.fromkeys(candidates))

    def find(self, file_name: str) -> Path | None:
        """The image file, or None.

        ``file_name`` as written, then (a path on the labelling machine: ``C:\\data\\images\\
        val\\cat\\1.jpg``, ``/home/me/project/images/1.jpg``) ever shorter tails of it, each
        also in Unicode's composed and decomposed forms (macOS writes file names decomposed).
        """
        file_name = file_name.replace("\\", "/")  # written on Windows (Label Studio, scripts)
        if Path(file_name).is_absolute() and path_kind(file_name) == "file":
            return abspath(file_name)
        parts = [p for p in file_name.split("/") if p and p != "." and not p.endswith(":")]
        for start in range(len(parts)):
            tail = "/".join(parts[start:])
            for name in unicode_forms(tail):
                for i, folder in enumerate(self.folders):
                    candidate = folder / name
                    if path_kind(candidate) == "file":
                        self.folders.insert(0, self.folders.pop(i))
                        return abspath(candidate)
        return None


def _record(
    path: Path,
    image: dict[str, Any],
    anns: list[dict[str, Any]],
    finder: _ImageFinder,
    classes: tuple[dict[int, str], dict[int, int], list[str]],
    issues: Issues,
) -> ImageRecord:
    categories, class_of, names = classes
    image_id = image["id"]
    file = finder.find(image["file_name"])
    if file is None:
        looked = ", ".join(str(f) for f in finder.folders)
        raise DataError(
            path, f"image file '{image['file_name']}' not found (looked in {looked})", f"image id {image_id}"
        )
    size = _stated_size(path, image)
    if size is None:
        width, height = read_image_size(file)
    else:
        width, height = check_annotated_size(file, *size, path, f"image id {image_id}", "the JSON")
    boxes, class_ids, crowd = [], [], []
    for ann in anns:
        where = f"annotation id {ann.get('id')}"
        cid = ann.get("category_id")
        if not _is_int(cid):
            raise DataError(path, f"'category_id' must be an integer, got {cid!r}", where)
        if cid not in class_of:
            reason = (
                f"category '{categories[cid]}' (id {cid}) is not in names {names_hint(names)}"
                if cid in categories
                else f"category id {cid!r} is not in 'categories'"
            )
            raise DataError(path, reason, where)
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise DataError(path, f"malformed bbox {bbox!r}: expected [x, y, width, height]", where)
        try:
            x, y, w, h = (float(v) for v in bbox)
        except OverflowError:  # an integer beyond float range
            raise DataError(path, f"malformed bbox {bbox!r}: a value is too large", where) from None
        problem = box_problem(x, y, x + w, y + h, width, height)
        if problem:
            raise DataError(path, f"box {fmt_box(bbox)} (x, y, w, h) {problem} (image id {image_id})", where)
        box = clip_box(x, y, x + w, y + h, width, height)
        if box is None:
            issues.drop(path, f"box {fmt_box(bbox)} (x, y, w, h) {DROPPED} (image id {image_id})", where)
            continue
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1):  # "0" would be true
            raise DataError(path, f"'iscrowd' must be 0 or 1, got {iscrowd!r}", where)
        boxes.append(box)
        class_ids.append(class_of[cid])
        crowd.append(bool(iscrowd))
    return ImageRecord(file, image_id, width, height, boxes, class_ids, iscrowd=crowd)


def _stated_size(path: Path, image: dict[str, Any]) -> tuple[int, int] | None:
    """An image entry's ``width`` and ``height``; None when it gives neither.

    Raises:
        DataError: only one is given, or one is not a positive integer (``640.0`` is one).
    """
    where = f"image id {image['id']}"
    values = {key: image.get(key) for key in ("width", "height")}
    if values["width"] is None and values["height"] is None:
        return None
    size = []
    for key, value in values.items():
        if value is None:
            raise DataError(path, f"'{key}' is missing: give both width and height, or neither", where)
        value = _whole(value)
        if not (_is_int(value) and value > 0):
            kind = " (a string)" if isinstance(value, str) else ""
            raise DataError(path, f"'{key}' must be a positive integer (pixels), got {value!r}{kind}", where)
        size.append(value)
    return size[0], size[1]


def write_coco(
    records: Sequence[ImageRecord],
    names: Sequence[str],
    root: str | Path,
    split: str = "val",
    *,
    category_ids: Sequence[int] | None = None,
    placed: dict[Path, Path] | None = None,
) -> Path:
    """Write records in the official COCO layout: ``root/annotations/instances_<split>.json``
    with the images copied to ``root/<split>/`` (a name clash renamed, see :func:`place_image`).

    Image ids are the records' ids; annotation ids count from 1. ``category_ids`` maps class
    index to category id (default: the class index). ``iscrowd`` is kept; ``difficult`` is not
    part of COCO and is dropped.

    Returns:
        The JSON file written (the split's entry for data.yaml).
    """
    root = Path(root)
    category_ids = list(category_ids) if category_ids is not None else list(range(len(names)))
    if len(category_ids) != len(names):
        raise ValueError(f"{len(names)} names but {len(category_ids)} category ids")
    ids = [r.image_id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("records share image ids; COCO image ids must be unique")
    placed = {} if placed is None else placed
    images, annotations = [], []
    for record in sorted(records, key=lambda r: r.image_id):
        image = place_image(record.path, root / split / record.path.name, placed)
        images.append(
            {
                "id": int(record.image_id),
                "file_name": image.name,
                "width": record.width,
                "height": record.height,
            }
        )
        for box, cls, crowd in zip(record.boxes, record.class_ids, record.iscrowd, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(record.image_id),
                    "category_id": int(category_ids[int(cls)]),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(crowd),
                }
            )
    doc = {
        "info": {"description": "written by edgecnn"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": int(c), "name": n, "supercategory": ""} for c, n in zip(category_ids, names, strict=True)
        ],
    }
    json_path = root / "annotations" / f"instances_{split}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc), encoding="utf-8")
    return json_path
