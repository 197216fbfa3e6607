"""data.yaml as Ultralytics, Roboflow and hand-written files really are: BOM, CRLF, names as a
mapping, nc, download scripts, missing or empty splits, splits given as image-list files."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_exports import image

from edgecnn.data import load_data_config, load_split, load_splits
from edgecnn.errors import DataError


def _yolo_images(root: Path, folder: str, names: list[str]) -> None:
    for name in names:
        image(root / folder / name)
        label = root / folder.replace("images", "labels", 1) / Path(name).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("0 0.5 0.5 0.5 0.5\n")


def test_bom_and_crlf_line_endings(tmp_path: Path) -> None:
    _yolo_images(tmp_path, "images/val", ["a.jpg"])
    text = "path: .\r\nval: images/val\r\nnames:\r\n  0: person\r\n  1: car\r\n"
    (tmp_path / "data.yaml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    split = load_split(tmp_path / "data.yaml")
    assert split.names == ["person", "car"] and len(split.records) == 1


def test_names_mapping_with_unordered_and_quoted_keys(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("names:\n  '1': car\n  0: person\n  2: dog\n")
    assert load_data_config(tmp_path / "data.yaml").class_names == ["person", "car", "dog"]


def test_names_mapping_with_gaps_is_refused_like_ultralytics(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("val: x\nnames:\n  0: person\n  2: car\n")
    with pytest.raises(DataError, match=r"data.yaml \(line 2\): .*names mapping must be 0..1, got \[0, 2\]"):
        load_data_config(tmp_path / "data.yaml")


def test_nc_without_names_gives_numbered_class_names_like_ultralytics(tmp_path: Path) -> None:
    _yolo_images(tmp_path, "images/val", ["a.jpg"])
    (tmp_path / "data.yaml").write_text("val: images/val\nnc: 2\n")
    assert load_split(tmp_path / "data.yaml").names == ["class_0", "class_1"]


def test_nc_inconsistent_with_names(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("names: [a, b]\nnc: 3\n")
    with pytest.raises(DataError, match=r"\(line 2\): bad value for 'nc': nc is 3 but names has 2 entries"):
        load_data_config(tmp_path / "data.yaml")


def test_download_script_is_ignored_and_missing_val_and_empty_test(tmp_path: Path) -> None:
    _yolo_images(tmp_path, "images/train", ["a.jpg"])
    text = (
        "path: .\ntrain: images/train\ntest:\nnames: [person]\n"
        "download: |\n  from ultralytics.utils.downloads import download\n  download(['https://x/y.zip'])\n"
    )
    (tmp_path / "data.yaml").write_text(text)
    assert list(load_splits(tmp_path / "data.yaml")) == ["train"]
    with pytest.raises(DataError, match="no 'val' split is set"):
        load_split(tmp_path / "data.yaml", "val")
    (tmp_path / "data.yaml").write_text(text.replace("test:\n", "test: ''\nval: null\n"))
    assert list(load_splits(tmp_path / "data.yaml")) == ["train"]


def test_absolute_path_and_path_relative_to_the_yaml_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "datasets" / "coco8"
    _yolo_images(root, "images/val", ["a.jpg", "b.jpg"])
    monkeypatch.chdir(tmp_path)  # the cwd has no images/ folder
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "rel.yaml").write_text("path: ../datasets/coco8\nval: images/val\nnames: [p]\n")
    (tmp_path / "cfg" / "abs.yaml").write_text(f"path: {root}\nval: images/val\nnames: [p]\n")
    for name in ("rel.yaml", "abs.yaml"):
        assert [r.path for r in load_split(tmp_path / "cfg" / name).records] == [
            root / "images" / "val" / "a.jpg",
            root / "images" / "val" / "b.jpg",
        ]


def test_split_as_list_of_folders(tmp_path: Path) -> None:
    _yolo_images(tmp_path, "images/train2007", ["a.jpg"])
    _yolo_images(tmp_path, "images/train2012", ["b.jpg"])
    (tmp_path / "data.yaml").write_text("train:\n  - images/train2007\n  - images/train2012\nnames: [p]\n")
    assert [r.path.name for r in load_split(tmp_path / "data.yaml", "train").records] == ["a.jpg", "b.jpg"]


def test_split_as_ultralytics_image_list(tmp_path: Path) -> None:
    """coco/train2017.txt lists ``./images/train2017/x.jpg`` relative to the dataset root; a list
    kept in a sub-folder may also hold root-relative lines, or absolute ones; CRLF, blanks."""
    _yolo_images(tmp_path, "images/train2017", ["a.jpg", "b.jpg", "c.jpg"])
    (tmp_path / "train2017.txt").write_bytes(
        b"./images/train2017/a.jpg\r\n./images/train2017/b.jpg  \r\n\r\n"
    )
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "val.txt").write_text(
        f"images/train2017/b.jpg\n{tmp_path}/images/train2017/c.jpg\n"
    )
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path}\ntrain: train2017.txt\nval: lists/val.txt\nnames: [p]\n"
    )
    assert [r.path.name for r in load_split(tmp_path / "data.yaml", "train").records] == ["a.jpg", "b.jpg"]
    val = load_split(tmp_path / "data.yaml", "val")
    assert [r.path.name for r in val.records] == ["b.jpg", "c.jpg"]
    assert all(len(r.boxes) == 1 for r in val.records)  # labels found via the images -> labels rule


def test_image_list_with_a_missing_image_names_the_line(tmp_path: Path) -> None:
    _yolo_images(tmp_path, "images/val", ["a.jpg"])
    (tmp_path / "val.txt").write_text("./images/val/a.jpg\n./images/val/gone.jpg\n")
    (tmp_path / "data.yaml").write_text("val: val.txt\nnames: [p]\n")
    with pytest.raises(DataError, match=r"val.txt \(line 2\): image .*gone.jpg not found"):
        load_split(tmp_path / "data.yaml")
    assert len(load_split(tmp_path / "data.yaml", skip_bad=True).skipped) == 1


def test_numeric_names_become_text_and_yaml_booleans_are_refused(tmp_path: Path) -> None:
    (tmp_path / "digits.yaml").write_text("names: [0, 1, 2.5]\n")
    assert load_data_config(tmp_path / "digits.yaml").class_names == ["0", "1", "2.5"]
    (tmp_path / "helmet.yaml").write_text("val: x\nnames:\n  0: yes\n  1: no\n")
    with pytest.raises(DataError, match=r"\(line 2\): .*class 0 is True, not a name: .*quote it"):
        load_data_config(tmp_path / "helmet.yaml")
