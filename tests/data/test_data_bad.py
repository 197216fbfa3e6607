"""Bad data: every case raises a DataError naming the file and the entry; ``skip_bad`` leaves the
image out, counts it, keeps the other images' ids and logs a warning."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgecnn.data import load_split
from edgecnn.errors import DataError

# The make_dataset train split: a.png (cat, bird), b.jpg (empty), c.png (dog, dog, cat), d.jpg (bird);
# COCO annotation ids 1, 2 on a; 3, 4, 5 on c; 6 on d.


def _append(rel: str, line: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / rel
        path.write_text(path.read_text() + line + "\n")

    return mutate


def _replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / rel
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    return mutate


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)

    return mutate


def _delete(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


def _not_a_file(rel: str, kind: str) -> Callable[[Path], None]:
    """Put a folder or a named pipe where a file is expected (opening a pipe blocks until a
    writer comes: without the check, the load hangs)."""

    def mutate(root: Path) -> None:
        path = root / rel
        path.unlink(missing_ok=True)
        if kind == "folder":
            path.mkdir()
        else:
            os.mkfifo(path)

    return mutate


# A GIF header of 65535 x 59903 pixels, cut short (found by fuzzing): OpenCV's decoder raises
# cv2.error on it ("pixels <= CV_IO_MAX_IMAGE_PIXELS") instead of returning None.
GIF_BEYOND_OPENCV_LIMITS = bytes.fromhex("474946383961ffffffe90000003b2e97529f2af04c87e8d69a9ceaf7f5e8")

# An entity declared in a DOCTYPE: harmless here, but the same mechanism makes XML bombs.
VOC_WITH_DOCTYPE = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY animal "dog">]>
<annotation><object><name>&animal;</name></object></annotation>
"""


def _coco(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / "annotations" / "instances_train.json"
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))

    return mutate


def _ann(doc: dict, ann_id: int) -> dict:
    return next(a for a in doc["annotations"] if a["id"] == ann_id)


COCO_FILE = "annotations/instances_train.json"

# name: (format, mutation, file at fault, entry, message fragment, images left out by skip_bad)
CASES = {
    "yolo unknown class": (
        "yolo",
        _append("labels/train/c.txt", "7 0.5 0.5 0.1 0.1"),
        "labels/train/c.txt",
        "line 4",
        "class 7 not in names (0..2: cat, dog, bird)",
        ["c.png"],
    ),
    "yolo not a number": (
        "yolo",
        _write("labels/train/d.txt", "2 0.5 0.5 0.1 0.1\n1 0.5 zero 0.1 0.1\n"),
        "labels/train/d.txt",
        "line 2",
        "not a number",
        ["d.jpg"],
    ),
    "yolo four values": (
        "yolo",
        _append("labels/train/a.txt", "1 0.5 0.5 0.1"),
        "labels/train/a.txt",
        "line 3",
        "expected 5 values (class cx cy w h) or a polygon (class x1 y1 x2 y2 x3 y3 ...), got 4",
        ["a.png"],
    ),
    "yolo confidence column": (
        "yolo",
        _write("labels/train/b.txt", "1 0.5 0.5 0.1 0.1 0.93\n"),
        "labels/train/b.txt",
        "line 1",
        "a trailing confidence makes this a prediction, not ground truth",
        ["b.jpg"],
    ),
    "yolo box outside": (
        "yolo",
        _append("labels/train/c.txt", "0 0.95 0.5 0.2 0.2"),
        "labels/train/c.txt",
        "line 4",
        "box [0.95, 0.5, 0.2, 0.2] (normalised cx cy w h) outside the 64x48 image",
        ["c.png"],
    ),
    "yolo negative size": (
        "yolo",
        _append("labels/train/c.txt", "0 0.5 0.5 -0.1 0.2"),
        "labels/train/c.txt",
        "line 4",
        "has negative size",
        ["c.png"],
    ),
    "yolo pixel coordinates": (
        "yolo",
        _append("labels/train/a.txt", "0 32 24 10 10"),
        "labels/train/a.txt",
        "line 3",
        "YOLO coordinates are normalised to 0..1",
        ["a.png"],
    ),
    "yolo label file is a folder": (
        "yolo",
        _not_a_file("labels/train/c.txt", "folder"),
        "labels/train/c.txt",
        None,
        "the label file is a folder, not a file",
        ["c.png"],
    ),
    "yolo label file is a named pipe": (
        "yolo",
        _not_a_file("labels/train/a.txt", "fifo"),
        "labels/train/a.txt",
        None,
        "the label file is a named pipe (FIFO), not a file",
        ["a.png"],
    ),
    "yolo image is a named pipe": (
        "yolo",
        _not_a_file("images/train/e.png", "fifo"),
        "images/train/e.png",
        None,
        "not an image file: a named pipe (FIFO)",
        ["e.png"],
    ),
    "yolo unreadable image": (
        "yolo",
        _write("images/train/b.jpg", "this is not a JPEG"),
        "images/train/b.jpg",
        None,
        "unreadable image",
        ["b.jpg"],
    ),
    "yolo 0-byte image": (  # a download that never got its bytes
        "yolo",
        _write("images/train/b.jpg", ""),
        "images/train/b.jpg",
        None,
        "empty file (0 bytes), not an image",
        ["b.jpg"],
    ),
    "coco box outside": (
        "coco",
        _coco(lambda d: _ann(d, 4).update(bbox=[60, 10, 20, 10])),
        COCO_FILE,
        "annotation id 4",
        "box [60, 10, 20, 10] (x, y, w, h) outside the 64x48 image (image id 3)",
        ["c.png"],
    ),
    "coco negative size": (
        "coco",
        _coco(lambda d: _ann(d, 6).update(bbox=[5, 5, -3, 10])),
        COCO_FILE,
        "annotation id 6",
        "has negative size",
        ["d.jpg"],
    ),
    "coco unknown category": (
        "coco",
        _coco(lambda d: _ann(d, 1).update(category_id=99)),
        COCO_FILE,
        "annotation id 1",
        "category id 99 is not in 'categories'",
        ["a.png"],
    ),
    "coco category not in names": (
        "coco",
        _coco(lambda d: d["categories"][2].update(name="fish")),
        COCO_FILE,
        "annotation id 2",
        "category 'fish' (id 2) is not in names",
        ["a.png", "d.jpg"],
    ),
    "coco malformed bbox": (
        "coco",
        _coco(lambda d: _ann(d, 6).update(bbox=[1, 2, 3])),
        COCO_FILE,
        "annotation id 6",
        "malformed bbox [1, 2, 3]",
        ["d.jpg"],
    ),
    "coco missing image": (
        "coco",
        _delete("train/d.jpg"),
        COCO_FILE,
        "image id 4",
        "image file 'd.jpg' not found",
        ["d.jpg"],
    ),
    "coco size as text": (
        "coco",
        _coco(lambda d: d["images"][2].update(width="64")),
        COCO_FILE,
        "image id 3",
        "'width' must be a positive integer (pixels), got '64' (a string)",
        ["c.png"],
    ),
    "coco size missing height": (
        "coco",
        _coco(lambda d: d["images"][0].pop("height")),
        COCO_FILE,
        "image id 1",
        "'height' is missing: give both width and height, or neither",
        ["a.png"],
    ),
    "coco category id not an integer": (
        "coco",
        _coco(lambda d: _ann(d, 6).update(category_id=[2])),
        COCO_FILE,
        "annotation id 6",
        "'category_id' must be an integer, got [2]",
        ["d.jpg"],
    ),
    "coco iscrowd as text": (
        "coco",
        _coco(lambda d: _ann(d, 1).update(iscrowd="0")),
        COCO_FILE,
        "annotation id 1",
        "'iscrowd' must be 0 or 1, got '0'",
        ["a.png"],
    ),
    "coco bbox beyond float range": (
        "coco",
        _coco(lambda d: _ann(d, 6).update(bbox=[10**400, 1, 2, 3])),
        COCO_FILE,
        "annotation id 6",
        "a value is too large",
        ["d.jpg"],
    ),
    "coco file name the system refuses": (
        "coco",
        _coco(lambda d: d["images"][3].update(file_name="x" * 5000 + ".jpg")),
        COCO_FILE,
        "image id 4",
        "not found",
        ["d.jpg"],
    ),
    "coco annotation of an unknown image": (
        "coco",
        _coco(
            lambda d: d["annotations"].append(
                {"id": 50, "image_id": 77, "category_id": 0, "bbox": [1, 1, 2, 2]}
            )
        ),
        COCO_FILE,
        "annotation id 50",
        "image id 77 is not in 'images'",
        [],
    ),
    "voc malformed xml": (
        "voc",
        _write("Annotations/c.xml", "<annotation>\n  <object>\n</annotation>\n"),
        "Annotations/c.xml",
        "line 3 column 3",
        "malformed XML: mismatched tag",
        ["c.png"],
    ),
    "voc unknown class": (
        "voc",
        _replace("Annotations/c.xml", "<name>dog</name>", "<name>fish</name>"),
        "Annotations/c.xml",
        "object 1",
        "class 'fish' not in names",
        ["c.png"],
    ),
    "voc box outside": (
        "voc",
        _replace("Annotations/d.xml", "<xmax>15</xmax>", "<xmax>80</xmax>"),
        "Annotations/d.xml",
        "object 1",
        "box [6, 6, 80, 15] (xmin ymin xmax ymax) outside the 64x48 image",
        ["d.jpg"],
    ),
    "voc negative size": (
        "voc",
        _replace("Annotations/d.xml", "<width>64</width>", "<width>-160</width>"),
        "Annotations/d.xml",
        "size",
        "<width> is '-160': the image size must be whole numbers of pixels (0 when unknown)",
        ["d.jpg"],
    ),
    "voc infinite size": (
        "voc",
        _replace("Annotations/a.xml", "<height>48</height>", "<height>inf</height>"),
        "Annotations/a.xml",
        "size",
        "<height> is 'inf'",
        ["a.png"],
    ),
    "voc doctype": (
        "voc",
        _write("Annotations/c.xml", VOC_WITH_DOCTYPE),
        "Annotations/c.xml",
        None,
        "<!DOCTYPE> is not allowed in a VOC annotation",
        ["c.png"],
    ),
    "voc unknown encoding": (
        "voc",
        _write("Annotations/b.xml", '<?xml version="1.0" encoding="no-such-codec"?>\n<annotation/>\n'),
        "Annotations/b.xml",
        None,
        "malformed XML: unknown encoding",
        ["b.jpg"],
    ),
    "voc list entry the system refuses": (
        "voc",
        _append("ImageSets/Main/train.txt", "x" * 5000),  # longer than NAME_MAX
        "ImageSets/Main/train.txt",
        "line 5",
        "not found",
        [],
    ),
    "voc missing annotation file": (
        "voc",
        _delete("Annotations/b.xml"),
        "ImageSets/Main/train.txt",
        "line 2",
        "Annotations/b.xml not found",
        ["b.jpg"],
    ),
    "voc missing image": (
        "voc",
        _delete("JPEGImages/c.png"),
        "Annotations/c.xml",
        "filename",
        "image for 'c' not found",
        ["c.png"],
    ),
    "folders unknown class folder": (
        "folders",
        lambda root: (
            (root / "train" / "fish").mkdir()
            or (root / "train" / "fish" / "x.png").write_bytes(
                (root / "train" / "cat" / "a.png").read_bytes()
            )
        ),
        "train/fish",
        "x.png",
        "folder 'fish' is not a class in names (0..2: cat, dog, bird)",
        ["x.png"],
    ),
    "folders image beyond OpenCV's limits": (
        "folders",
        lambda root: (root / "train" / "dog" / "z.gif").write_bytes(GIF_BEYOND_OPENCV_LIMITS),
        "train/dog/z.gif",
        None,
        "unreadable image",
        ["z.gif"],
    ),
    "folders unreadable image": (
        "folders",
        _write("train/dog/z.png", "\x89PNG but not really"),
        "train/dog/z.png",
        None,
        "unreadable image",
        ["z.png"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_entry_names_file_and_entry_and_skip_bad_counts_it(
    make_dataset, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    fmt, mutate, rel, entry, fragment, left_out = CASES[case]
    data_yaml = make_dataset(fmt)
    good = load_split(data_yaml, "train")
    mutate(data_yaml.parent)

    with pytest.raises(DataError) as info:
        load_split(data_yaml, "train")
    error = info.value
    assert Path(error.path) == data_yaml.parent / rel
    assert error.entry == entry
    assert fragment in error.detail
    assert str(error).startswith(f"{data_yaml.parent / rel}{f' ({entry})' if entry else ''}: ")

    with caplog.at_level(logging.WARNING, logger="edgecnn.data"):
        split = load_split(data_yaml, "train", skip_bad=True)
    assert split.skipped[0] == str(error)
    # One message per image left out (or per orphan annotation, which leaves out no image).
    assert len(split.skipped) == max(len(left_out), 1)
    kept = {r.path.name: r.image_id for r in split.records}
    assert set(kept) == {r.path.name for r in good.records} - set(left_out)
    assert all(kept[r.path.name] == r.image_id for r in good.records if r.path.name in kept)
    assert f"train split: skipped {len(split.skipped)} bad entries" in caplog.text


def test_malformed_json_is_fatal_even_when_skipping(make_dataset) -> None:
    data_yaml = make_dataset("coco")
    path = data_yaml.parent / COCO_FILE
    path.write_text('{"images": [\n  {"id": 1,,}\n]}')
    for skip_bad in (False, True):
        with pytest.raises(DataError, match="malformed JSON") as info:
            load_split(data_yaml, "train", skip_bad=skip_bad)
        assert Path(info.value.path) == path and info.value.entry == "line 2 column 12"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "malformed JSON: nested too deeply"),
        ('{"images": [], "categories": [], "n": ' + "9" * 5000 + "}", "malformed JSON: Exceeds the limit"),
    ],
    ids=["nested", "long integer"],
)
def test_json_the_decoder_refuses_is_malformed(make_dataset, text: str, message: str) -> None:
    data_yaml = make_dataset("coco")
    path = data_yaml.parent / COCO_FILE
    path.write_text(text)
    for skip_bad in (False, True):
        with pytest.raises(DataError, match=message) as info:
            load_split(data_yaml, "train", skip_bad=skip_bad)
        assert Path(info.value.path) == path


def test_file_names_the_system_refuses_are_not_found(make_dataset) -> None:
    data_yaml = make_dataset("yolo")
    listed = data_yaml.parent / "train.txt"
    listed.write_text("images/train/a.png\n" + "x" * 5000 + ".png\n")  # longer than NAME_MAX
    data_yaml.write_text(data_yaml.read_text().replace("train: images/train", "train: train.txt"))
    with pytest.raises(DataError, match=r"image .*xxx\.png not found") as info:
        load_split(data_yaml, "train")
    assert (info.value.path, info.value.entry) == (str(listed), "line 2")

    data_yaml = make_dataset("voc")  # a <filename> that cannot exist: the image is found by its id
    _replace("Annotations/a.xml", "<filename>a.png</filename>", f"<filename>{'x' * 5000}</filename>")(
        data_yaml.parent
    )
    assert load_split(data_yaml, "train").records[0].path.name == "a.png"


def _deny_listing(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, denied: Path) -> None:
    """Make ``owner.name`` (a listing function) fail on ``denied`` as chmod 000 would: tests run
    as root, for whom permission bits deny nothing."""
    real = getattr(owner, name)

    def guarded(path: Any = ".") -> Any:
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(owner, name, guarded)


@pytest.mark.parametrize(
    ("kind", "extra", "inside"),
    [
        ("folders", "", False),
        ("folders", "format: folders\n", False),
        ("folders", "", True),
        ("yolo", "", True),
    ],
    ids=["split detected", "split format set", "class folder", "yolo images folder"],
)
def test_a_folder_that_cannot_be_listed_is_an_error_naming_it(
    make_dataset, monkeypatch: pytest.MonkeyPatch, kind: str, extra: str, inside: bool
) -> None:
    # Inside a split, os.walk skips what it cannot list unless told otherwise: the images there
    # would be missing from the split without a word.
    data_yaml = make_dataset(kind)
    data_yaml.write_text(data_yaml.read_text() + extra)
    root = data_yaml.parent
    if inside:
        train = [p for p in sorted(root.rglob("*.png")) if "train" in p.relative_to(root).parts]
        denied = train[-1].parent
        _deny_listing(monkeypatch, os, "scandir", denied)
    else:
        denied = root / "train"
        _deny_listing(monkeypatch, Path, "iterdir", denied)
    with pytest.raises(DataError, match="cannot list the folder: Permission denied") as info:
        load_split(data_yaml, "train")
    assert info.value.path == str(denied)


def test_missing_voc_image_set_is_fatal(make_dataset) -> None:
    data_yaml = make_dataset("voc")
    data_yaml.write_text(data_yaml.read_text() + "test: .\n")
    with pytest.raises(DataError, match=r"ImageSets/Main/test.txt: image-set list not found") as info:
        load_split(data_yaml, "test", skip_bad=True)
    assert info.value.path.endswith("ImageSets/Main/test.txt")


def test_empty_split_and_all_bad_split(tmp_path: Path, make_dataset) -> None:
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "data.yaml").write_text("val: images\nnames: [a]\n")
    with pytest.raises(DataError, match=r"the val split has no images$") as info:
        load_split(tmp_path / "empty" / "data.yaml")
    assert info.value.path == str(tmp_path / "empty" / "images")

    data_yaml = make_dataset("yolo")
    for label in (data_yaml.parent / "labels" / "val").iterdir():
        label.write_text("9 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match="the val split has no images; 2 bad entries were skipped"):
        load_split(data_yaml, "val", skip_bad=True)


def test_yolo_and_voc_need_names(make_dataset) -> None:
    data_yaml = make_dataset("yolo")
    text = data_yaml.read_text()
    data_yaml.write_text(text[: text.index("names:")])
    with pytest.raises(DataError, match="names is required for the yolo format"):
        load_split(data_yaml)


def test_nc_must_match_the_classes_a_coco_file_brings(make_dataset) -> None:
    data_yaml = make_dataset("coco")
    text = data_yaml.read_text()
    data_yaml.write_text(text[: text.index("names:")] + "nc: 5\n")
    with pytest.raises(DataError, match="nc is 5 but the val split has 3 classes"):
        load_split(data_yaml)
