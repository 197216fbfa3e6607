"""Ultralytics YOLO txt labels as exports really write them (Roboflow, CVAT, Label Studio,
coco8/coco128): odd whitespace, scientific notation, polygons, duplicates, rounding past the
border, nested folders, unusual image suffixes, symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from data_exports import H, W, image

from edgecnn.data import load_split, load_splits
from edgecnn.errors import DataError


def _one_image(tmp_path: Path, label: str | bytes | None) -> Path:
    image(tmp_path / "images" / "val" / "a.jpg")
    if label is not None:
        path = tmp_path / "labels" / "val" / "a.txt"
        path.parent.mkdir(parents=True)
        path.write_bytes(label if isinstance(label, bytes) else label.encode())
    (tmp_path / "data.yaml").write_text("val: images/val\nnames: [person, car]\n")
    return tmp_path / "data.yaml"


# 64x48 image: cx 0.5 w 0.5 -> x 16..48; cy 0.5 h 0.5 -> y 12..36.
CENTRE = [16, 12, 48, 36]


@pytest.mark.parametrize(
    ("label", "boxes", "classes"),
    [
        ("", [], []),  # an image without objects
        (None, [], []),  # no label file: a background image
        (b"0 0.5 0.5 0.5 0.5  \r\n\r\n  \r\n", [CENTRE], [0]),  # CRLF, trailing spaces, blank lines
        ("\t1\t0.5 0.5\t0.5 0.5\n", [CENTRE], [1]),  # tabs
        (b"\xef\xbb\xbf1 0.5 0.5 0.5 0.5\n", [CENTRE], [1]),  # a BOM (Windows Notepad)
        ("0 5e-1 5.0E-01 2.5e-1 0.25\n", [[24, 18, 40, 30]], [0]),  # scientific notation
        ("0.0 0.5 0.5 0.5 0.5\n1.0 0.5 0.5 0.5 0.5\n", [CENTRE, CENTRE], [0, 1]),  # float class ids
        ("0 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.5 0.5\n", [CENTRE], [0]),  # an exact duplicate is dropped
        ("0 0.5 0.5 1.0000001 1.0000001\n", [[0, 0, W, H]], [0]),  # rounding past the border: clipped
        ("0 0.25 0.25 0.5000001 0.5\n", [[0, 0, 32, 24]], [0]),  # x1 = -3e-6: clipped
        ("0 0.25 0.25 0.5 0.5\n0 -1e-7 0.5 2e-7 0.5\n", [[0, 0, 32, 24]], [0]),  # nothing left: dropped
        ("0 0.25 0.25 0.5 0.5\n1 0.5 0.5 0 0.25\n", [[0, 0, 32, 24]], [0]),  # zero width: dropped
        # A polygon (segmentation export): class then x y pairs -> the polygon's bounding box.
        ("1 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75\n", [CENTRE], [1]),
        ("0 0.1 0.2 0.5 0.1 0.9 0.2 0.8 0.9 0.3 0.7 0.1 0.2\n", [[6.4, 4.8, 57.6, 43.2]], [0]),
    ],
)
def test_label_lines_that_real_exports_contain(
    tmp_path: Path, label: str | bytes | None, boxes: list, classes: list
) -> None:
    record = load_split(_one_image(tmp_path, label)).records[0]
    np.testing.assert_allclose(record.boxes, np.array(boxes, np.float32).reshape(-1, 4), atol=1e-4)
    assert record.class_ids.tolist() == classes


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("1.5 0.5 0.5 0.5 0.5\n", r"\(line 1\): class 1.5 not in names"),
        ("2 0.5 0.5 0.5 0.5\n", r"\(line 1\): class 2 not in names \(0..1: person, car\)"),
        ("0 0.5 0.5 1.5 0.5\n", r"\(line 1\): box .* outside the 64x48 image"),
        ("0 320 240 100 80\n", r"outside the 64x48 image; YOLO coordinates are normalised to 0..1"),
        ("0 0.5 0.5 0.5 0.5 0.9\n", r"a trailing confidence makes this a prediction"),
        ("0 0.5 0.5 0.5\n", r"expected 5 values \(class cx cy w h\) or a polygon"),
        ("0 0.1 0.1 0.2 0.2\n0 0.1 0.1 0.5 0.1 0.5 0.5 0.9\n", r"\(line 2\): .*polygon needs x y pairs"),
        ("0 0.5 0.5 nan 0.5\n", r"non-finite"),
        ("0 0.5 0.5 0,5 0.5\n", r"not a number"),
    ],
)
def test_clearly_bad_label_lines_are_refused_with_file_and_line(
    tmp_path: Path, label: str, message: str
) -> None:
    data_yaml = _one_image(tmp_path, label)
    with pytest.raises(DataError, match=message) as info:
        load_split(data_yaml)
    assert str(info.value).startswith(str(tmp_path / "labels" / "val" / "a.txt"))


def test_skip_bad_leaves_the_image_out_and_counts_it(tmp_path: Path) -> None:
    data_yaml = _one_image(tmp_path, "7 0.5 0.5 0.5 0.5\n")
    image(tmp_path / "images" / "val" / "b.jpg")
    split = load_split(data_yaml, skip_bad=True)
    assert [r.path.name for r in split.records] == ["b.jpg"] and len(split.skipped) == 1


def test_roboflow_export_layout(tmp_path: Path) -> None:
    """Roboflow "YOLOv8" zip: data.yaml at the top naming ../train/images, train/images +
    train/labels, valid/, test/, nc, names list, a roboflow: block."""
    for split in ("train", "valid", "test"):
        image(tmp_path / split / "images" / f"{split}_jpg.rf.3f2a.jpg")
        (tmp_path / split / "labels").mkdir()
        (tmp_path / split / "labels" / f"{split}_jpg.rf.3f2a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 2\n"
        "names: ['person', 'car']\n\nroboflow:\n  workspace: ws\n  project: p\n  version: 3\n"
        "  license: CC BY 4.0\n  url: https://universe.roboflow.com/ws/p/dataset/3\n"
    )
    for split in ("train", "val", "test"):
        loaded = load_split(tmp_path / "data.yaml", split)
        assert loaded.format == "yolo" and loaded.records[0].class_ids.tolist() == [1]


def test_roboflow_export_without_test_folder_checks_the_other_splits(tmp_path: Path, caplog) -> None:
    """Roboflow writes `test: ../test/images` also when the export has no test split: checking
    every split skips it with a warning; asking for it still fails, naming the path."""
    for split in ("train", "valid"):
        image(tmp_path / split / "images" / "a.jpg")
        (tmp_path / split / "labels").mkdir()
        (tmp_path / split / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 1\nnames: ['person']\n"
    )
    assert list(load_splits(tmp_path / "data.yaml")) == ["train", "val"]
    assert "test split skipped" in caplog.text
    with pytest.raises(DataError, match=r"data.yaml \(line 3\): test path .*test/images does not exist"):
        load_splits(tmp_path / "data.yaml", ["test"])


def test_nested_folders_unusual_suffixes_and_symlinks(tmp_path: Path) -> None:
    names = ["a/b/deep.jpg", "UPPER.JPG", "shout.PNG", "x.jpeg", "y.bmp", "z.webp", "t.tif", "u.tiff"]
    for i, name in enumerate(names):
        image(tmp_path / "images" / "train" / name, W + i, H)
        label = tmp_path / "labels" / "train" / Path(name).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("1 0.5 0.5 1 1\n")
    # A symlinked image (datasets assembled with ln -s); its label is found by the link's path.
    real = image(tmp_path / "pool" / "real.jpg", 40, 30)
    os.symlink(real, tmp_path / "images" / "train" / "link.jpg")
    (tmp_path / "labels" / "train" / "link.txt").write_text("0 0.5 0.5 1 1\n")
    # A symlinked folder of images too.
    image(tmp_path / "pool2" / "images" / "in_dir.png", 20, 10)
    os.symlink(tmp_path / "pool2" / "images", tmp_path / "images" / "train" / "linked_dir")
    (tmp_path / "labels" / "train" / "linked_dir").mkdir()
    (tmp_path / "labels" / "train" / "linked_dir" / "in_dir.txt").write_text("0 0.5 0.5 1 1\n")
    (tmp_path / "data.yaml").write_text("train: images/train\nnames: [person, car]\n")

    split = load_split(tmp_path / "data.yaml", "train")
    got = {r.path.relative_to(tmp_path / "images" / "train").as_posix(): r for r in split.records}
    assert sorted(got) == sorted([*names, "link.jpg", "linked_dir/in_dir.png"])
    for i, name in enumerate(names):
        assert (got[name].width, got[name].height) == (W + i, H)
        np.testing.assert_allclose(got[name].boxes, [[0, 0, W + i, H]])
    assert (got["link.jpg"].width, got["link.jpg"].height) == (40, 30)
    assert got["link.jpg"].class_ids.tolist() == [0]
    np.testing.assert_allclose(got["linked_dir/in_dir.png"].boxes, [[0, 0, 20, 10]])


def test_cvat_yolo_1_1_labels_beside_the_images(tmp_path: Path) -> None:
    """CVAT's "YOLO 1.1" (Darknet) export: obj_train_data/ with each .txt beside its image."""
    image(tmp_path / "obj_train_data" / "frame_000000.jpg")
    (tmp_path / "obj_train_data" / "frame_000000.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    image(tmp_path / "obj_train_data" / "frame_000001.jpg")  # no objects: no .txt
    (tmp_path / "obj.names").write_text("person\ncar\n")
    (tmp_path / "data.yaml").write_text("train: obj_train_data\nnames: [person, car]\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert split.format == "yolo" and [r.class_ids.tolist() for r in split.records] == [[1], []]


def test_pose_labels_read_their_boxes_when_kpt_shape_is_set(tmp_path: Path) -> None:
    """coco8-pose: ``kpt_shape: [17, 3]``, ``flip_idx``; 5 + 51 values per line."""
    data_yaml = _one_image(tmp_path, "0 0.5 0.5 0.5 0.5 " + " ".join(["0.5 0.5 2"] * 17) + "\n")
    data_yaml.write_text(data_yaml.read_text() + "kpt_shape: [17, 3]\nflip_idx: [0, 2, 1]\nchannels: 3\n")
    np.testing.assert_allclose(load_split(data_yaml).records[0].boxes, [CENTRE])
    (tmp_path / "labels" / "val" / "a.txt").write_text("0 0.5 0.5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"\(line 1\): expected 56 values .*kpt_shape\), got 7"):
        load_split(data_yaml)


def test_a_split_without_any_label_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data_yaml = _one_image(tmp_path, None)
    with caplog.at_level("WARNING"):
        assert len(load_split(data_yaml).records[0].boxes) == 0
    assert "no label file for any of the 1 images" in caplog.text
    assert str(tmp_path / "labels" / "val" / "a.txt") in caplog.text


def test_image_list_names_in_the_other_unicode_form_are_found(tmp_path: Path) -> None:
    """A train.txt written on Linux (composed names) for images copied from a Mac (decomposed)."""
    on_disk = tmp_path / "images" / "val" / "cafe\u0301.jpg"
    image(on_disk)
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val" / "cafe\u0301.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (tmp_path / "val.txt").write_text("images/val/caf\u00e9.jpg\n")
    (tmp_path / "data.yaml").write_text("val: val.txt\nnames: [person, car]\n")
    (record,) = load_split(tmp_path / "data.yaml").records
    assert record.path == on_disk and record.class_ids.tolist() == [1]
