"""Reading and writing COCO, YOLO, Pascal VOC and class folders; format detection; image ids."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from edgecnn.data import (
    ImageRecord,
    Split,
    detect_format,
    label_path,
    load_split,
    load_splits,
    write_dataset,
)
from edgecnn.errors import DataError


def _assert_same_boxes(split: Split, expected: list[ImageRecord], *, difficult: bool, crowd: bool) -> None:
    assert [r.path.name for r in split.records] == [r.path.name for r in expected]
    assert [r.image_id for r in split.records] == [r.image_id for r in expected]
    for got, want in zip(split.records, expected, strict=True):
        assert (got.width, got.height) == (want.width, want.height)
        assert got.boxes.dtype == np.float32 and got.class_ids.dtype == np.int64
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
        np.testing.assert_array_equal(got.class_ids, want.class_ids)
        np.testing.assert_array_equal(
            got.difficult, want.difficult if difficult else np.zeros(len(want.boxes))
        )
        np.testing.assert_array_equal(got.iscrowd, want.iscrowd if crowd else np.zeros(len(want.boxes)))
        assert got.label is None


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_detection_round_trip(make_dataset, records: list[ImageRecord], names: list[str], fmt: str) -> None:
    data_yaml = make_dataset(fmt)
    for split_name, expected in (("train", records), ("val", records[:2])):
        split = load_split(data_yaml, split_name)
        assert (split.name, split.format, split.task, split.names) == (split_name, fmt, "detect", names)
        assert split.category_ids == [0, 1, 2] and split.skipped == []
        _assert_same_boxes(split, expected, difficult=fmt == "voc", crowd=fmt == "coco")
    counts = load_split(data_yaml, "train").class_counts()
    assert counts.tolist() == [2, 2, 2]


def test_the_same_records_survive_a_chain_through_every_format(tmp_path: Path, records, names) -> None:
    current = records
    for step, fmt in enumerate(["coco", "yolo", "voc", "coco"]):
        data_yaml = write_dataset(tmp_path / f"step{step}_{fmt}", {"val": current}, names, fmt)
        split = load_split(data_yaml, "val")
        assert split.format == fmt
        for got, want in zip(split.records, records, strict=True):
            np.testing.assert_allclose(got.boxes, want.boxes, atol=2e-3)
            np.testing.assert_array_equal(got.class_ids, want.class_ids)
        current = split.records


def test_folders_round_trip(make_dataset, records, names) -> None:
    split = load_split(make_dataset("folders"), "train")
    assert (split.format, split.task, split.names) == ("folders", "classify", names)
    # Records 0..3 were labelled 0, 1, 2, 0; ids follow the sorted paths bird/, cat/, dog/.
    got = {r.path.name: (split.names[r.label], len(r.boxes)) for r in split.records}
    assert got == {"a.png": ("cat", 0), "b.jpg": ("dog", 0), "c.png": ("bird", 0), "d.jpg": ("cat", 0)}
    assert [r.path.parent.name for r in split.records] == ["bird", "cat", "cat", "dog"]
    assert [r.image_id for r in split.records] == [1, 2, 3, 4]
    assert split.class_counts().tolist() == [2, 1, 1]
    assert split.summary()["boxes"] == 0


def test_coco_reading_agrees_with_pycocotools(tmp_path: Path, write_image) -> None:
    for name, size in (("p.png", (64, 48)), ("q.jpg", (40, 30)), ("r.png", (50, 50))):
        write_image(tmp_path / "imgs" / name, *size)
    doc = {
        "images": [
            {"id": 35, "file_name": "r.png", "width": 50, "height": 50},
            {"id": 10, "file_name": "p.png", "width": 64, "height": 48},
            {"id": 20, "file_name": "q.jpg"},  # no size: read from the file header
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 12, "name": "bird"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1.5, 2, 20, 30.25], "iscrowd": 0, "area": 1},
            {"id": 2, "image_id": 10, "category_id": 12, "bbox": [30, 10, 34, 38], "iscrowd": 1, "area": 1},
            {"id": 5, "image_id": 20, "category_id": 3, "bbox": [0, 0, 40, 30], "iscrowd": 0, "area": 1},
            {"id": 9, "image_id": 10, "category_id": 3, "bbox": [5, 5, 5.5, 6], "iscrowd": 0, "area": 1},
        ],
    }
    json_path = tmp_path / "imgs" / "labels.json"
    json_path.write_text(json.dumps(doc))
    (tmp_path / "data.yaml").write_text("val: imgs/labels.json\n")

    split = load_split(tmp_path / "data.yaml")
    oracle = COCO(str(json_path))
    # Without names the classes are the categories sorted by id.
    assert (
        split.names
        == [c["name"] for c in oracle.loadCats(sorted(oracle.getCatIds()))]
        == ["cat", "dog", "bird"]
    )
    assert split.category_ids == [3, 7, 12]
    assert [r.image_id for r in split.records] == sorted(oracle.getImgIds()) == [10, 20, 35]
    for record in split.records:
        info = oracle.loadImgs(record.image_id)[0]
        assert record.path == tmp_path / "imgs" / info["file_name"]
        assert (record.width, record.height) == (info.get("width", 40), info.get("height", 30))
        anns = oracle.loadAnns(oracle.getAnnIds(imgIds=record.image_id))
        xywh = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        np.testing.assert_allclose(record.boxes, np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
        got_categories = [split.category_ids[c] for c in record.class_ids]
        assert got_categories == [a["category_id"] for a in anns]
        assert record.iscrowd.tolist() == [bool(a["iscrowd"]) for a in anns]


def test_coco_categories_map_to_names_by_name(tmp_path: Path, write_image) -> None:
    write_image(tmp_path / "a.png")
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 4, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 4, "bbox": [0, 0, 10, 10]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10]},
        ],
    }
    (tmp_path / "val.json").write_text(json.dumps(doc))
    (tmp_path / "data.yaml").write_text("val: val.json\nnames: [dog, bird, cat]\n")
    split = load_split(tmp_path / "data.yaml")
    assert split.names == ["dog", "bird", "cat"]
    # bird has no category in the file: it gets a fresh id above the file's largest.
    assert split.category_ids == [4, 5, 1]
    assert split.records[0].class_ids.tolist() == [0, 2]


@pytest.mark.parametrize(
    ("json_rel", "image_dir"),
    [
        ("annotations/instances_val2017.json", "val2017"),  # official COCO
        ("coco/annotations/instances_val2017.json", "coco/images/val2017"),  # Ultralytics coco
        ("valid/_annotations.coco.json", "valid"),  # Roboflow: images beside the JSON
        ("annotations/instances_default.json", "images"),  # CVAT: images/ beside annotations/
        ("export/result.json", "export/images"),  # Label Studio: images/ inside the JSON's folder
    ],
)
def test_coco_images_are_found_in_common_export_layouts(
    tmp_path: Path, write_image, json_rel: str, image_dir: str
) -> None:
    image = write_image(tmp_path / image_dir / "0001.png")
    json_path = tmp_path / json_rel
    json_path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "images": [{"id": 1, "file_name": "0001.png"}],
        "annotations": [],
        "categories": [{"id": 1, "name": "x"}],
    }
    json_path.write_text(json.dumps(doc))
    (tmp_path / "data.yaml").write_text(f"val: {json_rel}\n")
    assert load_split(tmp_path / "data.yaml").records[0].path == image


@pytest.mark.parametrize(
    ("file_name", "on_disk"),
    [
        ("C:\\Users\\me\\export\\images\\val\\cat\\0001.png", "images/val/cat/0001.png"),
        ("/home/me/export/images/val/0001.png", "images/val/0001.png"),
        ("images/val/0001.png", "val/0001.png"),
        ("caf\u00e9.png", "cafe\u0301.png"),  # composed in the JSON, decomposed on disk (macOS)
        ("cafe\u0301.png", "caf\u00e9.png"),
    ],
    ids=["windows path", "posix path elsewhere", "extra folder", "nfc vs nfd", "nfd vs nfc"],
)
def test_coco_file_names_from_other_machines_are_found(
    tmp_path: Path, write_image, file_name: str, on_disk: str
) -> None:
    image = write_image(tmp_path / on_disk)
    write_image(tmp_path / "0001.png", seed=1)  # a decoy with the same name, less deep
    images = [{"id": 1, "file_name": file_name}]
    doc = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "x"}]}
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    (tmp_path / "data.yaml").write_text("val: ann.json\n")
    assert load_split(tmp_path / "data.yaml").records[0].path == image


def test_yolo_label_path_rule() -> None:
    assert label_path(Path("/d/images/train/a.b.jpg")) == Path("/d/labels/train/a.b.txt")
    # The last "images" folder is the one replaced.
    assert label_path(Path("/images/set/images/x/a.png")) == Path("/images/set/labels/x/a.txt")
    assert label_path(Path("/d/flat/a.png")) == Path("/d/flat/a.txt")


def test_yolo_missing_label_file_means_no_objects_and_ids_follow_sorted_paths(
    tmp_path: Path, write_image
) -> None:
    for name in ("c.png", "a.png", "b.jpg"):  # written out of order
        write_image(tmp_path / "images" / "val" / name)
    labels = tmp_path / "labels" / "val"
    labels.mkdir(parents=True)
    (labels / "a.txt").write_text("1 0.5 0.5 0.25 0.5\n\n0 0.25 0.25 0.5 0.5\n")
    (labels / "c.txt").write_text("")
    (tmp_path / "data.yaml").write_text("val: images/val\nnames: [a, b]\n")
    split = load_split(tmp_path / "data.yaml")
    assert [(r.image_id, r.path.name) for r in split.records] == [(1, "a.png"), (2, "b.jpg"), (3, "c.png")]
    np.testing.assert_allclose(split.records[0].boxes, [[24, 12, 40, 36], [0, 0, 32, 24]])
    assert split.records[0].class_ids.tolist() == [1, 0]
    assert len(split.records[1].boxes) == 0 and len(split.records[2].boxes) == 0


def test_yolo_split_as_image_list_and_as_folder_containing_images(tmp_path: Path, write_image) -> None:
    for split in ("train", "valid"):
        write_image(tmp_path / split / "images" / f"{split}1.png")
        (tmp_path / split / "labels").mkdir()
        (tmp_path / split / "labels" / f"{split}1.txt").write_text("0 0.5 0.5 1 1\n")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "val.txt").write_text("# images of the val split\n../valid/images/valid1.png\n\n")
    (tmp_path / "data.yaml").write_text("train: train\nval: lists/val.txt\nnames: [thing]\n")
    for name, image in (("train", "train1.png"), ("val", "valid1.png")):
        split = load_split(tmp_path / "data.yaml", name)
        assert split.format == "yolo"
        assert [r.path.name for r in split.records] == [image]
        np.testing.assert_allclose(split.records[0].boxes, [[0, 0, 64, 48]])


def test_yolo_split_may_list_several_folders_numbered_together(tmp_path: Path, write_image) -> None:
    write_image(tmp_path / "images" / "b" / "1.png")
    write_image(tmp_path / "images" / "a" / "2.png")
    (tmp_path / "data.yaml").write_text("train: [images/b, images/a]\nnames: [x]\nformat: yolo\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert [(r.image_id, r.path.parent.name) for r in split.records] == [(1, "a"), (2, "b")]


def test_voc_corners_are_one_based_and_difficult_and_size_are_kept(tmp_path: Path, write_image) -> None:
    write_image(tmp_path / "VOC" / "JPEGImages" / "000007.jpg")
    (tmp_path / "VOC" / "Annotations").mkdir()
    (tmp_path / "VOC" / "Annotations" / "000007.xml").write_text(
        """<annotation><filename>000007.jpg</filename>
        <size><width>64</width><height>48</height><depth>3</depth></size>
        <object><name>dog</name><difficult>1</difficult>
          <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>64</xmax><ymax>48</ymax></bndbox></object>
        <object><name>cat</name><truncated>1</truncated>
          <bndbox><xmin>11</xmin><ymin>6</ymin><xmax>20</xmax><ymax>6</ymax></bndbox></object>
        </annotation>"""
    )
    (tmp_path / "VOC" / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "VOC" / "ImageSets" / "Main" / "trainval.txt").write_text("000007\n")
    (tmp_path / "data.yaml").write_text("val: VOC/ImageSets/Main/trainval.txt\nnames: [cat, dog]\n")
    split = load_split(tmp_path / "data.yaml")
    assert split.format == "voc"
    record = split.records[0]
    # xmin=1..xmax=64 covers the whole 64-pixel width; ymin=ymax=6 is the single pixel row 5.
    np.testing.assert_allclose(record.boxes, [[0, 0, 64, 48], [10, 5, 20, 6]])
    assert record.class_ids.tolist() == [1, 0]
    assert record.difficult.tolist() == [True, False]


def test_voc_image_found_by_id_when_filename_is_wrong_and_size_must_match(
    tmp_path: Path, write_image
) -> None:
    write_image(tmp_path / "JPEGImages" / "x.png", 64, 48)
    (tmp_path / "Annotations").mkdir()
    xml = (
        "<annotation><filename>wrong-name.png</filename>"
        "<size><width>{}</width><height>48</height></size></annotation>"
    )
    (tmp_path / "Annotations" / "x.xml").write_text(xml.format(64))
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("x\n")
    (tmp_path / "data.yaml").write_text("val: .\nnames: [a]\n")
    record = load_split(tmp_path / "data.yaml").records[0]
    # The filename is wrong, so the image is found by its id.
    assert record.path == tmp_path / "JPEGImages" / "x.png"
    assert (record.width, record.height) == (64, 48)
    # A <size> that is not the image's would scale every box wrongly: refused.
    (tmp_path / "Annotations" / "x.xml").write_text(xml.format(128))
    with pytest.raises(DataError, match=r"x.xml \(size\): <size> gives 128x48 but the image .*x.png is 64x"):
        load_split(tmp_path / "data.yaml")


def test_folders_class_order_follows_names_when_given(tmp_path: Path, write_image) -> None:
    write_image(tmp_path / "train" / "b_class" / "1.png")
    write_image(tmp_path / "train" / "a_class" / "nested" / "2.png")
    (tmp_path / "train" / "a_class" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / ".cache").mkdir()
    (tmp_path / "data.yaml").write_text("train: train\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert split.names == ["a_class", "b_class"]
    assert [r.label for r in split.records] == [0, 1]
    (tmp_path / "data.yaml").write_text("train: train\nnames: [b_class, empty_class, a_class]\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert [split.names[r.label] for r in split.records] == ["a_class", "b_class"]
    assert split.class_counts().tolist() == [1, 0, 1]


def test_folders_ignore_what_macos_and_nas_boxes_leave_behind(tmp_path: Path, write_image) -> None:
    # A zip made on a Mac holds __MACOSX/ with a "._" twin of every file; Synology adds @eaDir/.
    write_image(tmp_path / "train" / "cat" / "1.png")
    write_image(tmp_path / "train" / "__MACOSX" / "cat" / "._1.png")
    write_image(tmp_path / "train" / "cat" / "@eaDir" / "1.png")
    write_image(tmp_path / "yolo" / "images" / "2.png")
    write_image(tmp_path / "yolo" / "images" / "__MACOSX" / "2.png")
    (tmp_path / "data.yaml").write_text("train: train\nval: yolo/images\nformat: folders\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert split.names == ["cat"] and [r.path.name for r in split.records] == ["1.png"]
    (tmp_path / "yolo.yaml").write_text("train: yolo/images\nnames: [cat]\n")
    assert [r.path.parent.name for r in load_split(tmp_path / "yolo.yaml", "train").records] == ["images"]


def test_folders_without_names_take_the_classes_of_every_split(tmp_path: Path, write_image) -> None:
    # An empty class folder in train only, a class val lacks: ids must agree between splits.
    write_image(tmp_path / "train" / "cat" / "1.png")
    write_image(tmp_path / "train" / "dog" / "2.png")
    (tmp_path / "train" / "empty").mkdir()
    write_image(tmp_path / "val" / "dog" / "3.png")
    write_image(tmp_path / "val" / "zebra" / "4.png")
    (tmp_path / "data.yaml").write_text("train: train\nval: val\ntest: missing\n")
    splits = load_splits(tmp_path / "data.yaml", ["train", "val"])
    assert splits["train"].names == splits["val"].names == ["cat", "dog", "empty", "zebra"]
    assert [r.label for r in splits["val"].records] == [1, 3]
    assert splits["train"].class_counts().tolist() == [1, 1, 0, 0]


def test_splits_that_differ_in_classes_are_refused_as_training_would(tmp_path: Path, write_image) -> None:
    for split, names in (("train", ["cat", "dog"]), ("val", ["dog", "cat"])):
        write_image(tmp_path / f"{split}.png")
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
        images = [{"id": 1, "file_name": f"{split}.png", "width": 64, "height": 48}]
        coco = {"images": images, "annotations": [], "categories": categories}
        (tmp_path / f"{split}.json").write_text(json.dumps(coco))
    data = tmp_path / "data.yaml"
    data.write_text("train: train.json\nval: val.json\n")
    message = f"{data}: the train and val splits differ in classes: cat, dog vs dog, cat"
    with pytest.raises(DataError) as info:
        load_splits(data)
    assert str(info.value) == message
    assert load_splits(data, ["val"])["val"].names == ["dog", "cat"]  # one split alone is fine
    from edgecnn.train.config import TrainConfig
    from edgecnn.train.fit import _load_data  # imports no TensorFlow

    with pytest.raises(DataError) as info:
        _load_data(TrainConfig(data=data, model="lenet"))
    assert str(info.value) == message


def test_detect_format_rules(tmp_path: Path, write_image) -> None:
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "list.txt").write_text("")
    (tmp_path / "VOC" / "Annotations").mkdir(parents=True)
    (tmp_path / "VOC" / "JPEGImages").mkdir()
    (tmp_path / "VOC" / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "VOC" / "ImageSets" / "Main" / "val.txt").write_text("")
    (tmp_path / "yolo" / "images" / "val").mkdir(parents=True)
    (tmp_path / "yolo" / "labels" / "val").mkdir(parents=True)
    (tmp_path / "roboflow" / "images").mkdir(parents=True)
    (tmp_path / "cls" / "cat").mkdir(parents=True)
    write_image(tmp_path / "flat" / "a.png")
    expected = {
        "x.json": "coco",
        "list.txt": "yolo",
        "VOC": "voc",
        "VOC/ImageSets/Main/val.txt": "voc",
        "yolo/images/val": "yolo",
        "yolo/images": "yolo",
        "roboflow": "yolo",
        "cls": "folders",
    }
    assert {rel: detect_format(tmp_path / rel) for rel in expected} == expected
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        detect_format(tmp_path / "flat")


def test_class_folders_with_a_stray_image_say_so_and_format_folders_reads_them(
    tmp_path: Path, write_image
) -> None:
    """A picture left beside the class folders (as copies and zips leave them) is named in
    the error, with the way out; ``format: folders`` leaves it out, as Keras does."""
    for split in ("train", "val"):
        write_image(tmp_path / split / "cat" / "c.jpg")
        write_image(tmp_path / split / "dog" / "d.jpg")
    write_image(tmp_path / "train" / "IMG 1.JPG")
    (tmp_path / "data.yaml").write_text("train: train\nval: val\n")
    with pytest.raises(
        DataError,
        match=r"train: cannot tell the dataset format: sub-folders \(cat, dog\) and 1 image\(s\) of its "
        r"own \(IMG 1.JPG\); .* set format: folders",
    ):
        load_split(tmp_path / "data.yaml", "train")
    (tmp_path / "data.yaml").write_text("train: train\nval: val\nformat: folders\n")
    assert len(load_split(tmp_path / "data.yaml", "train").records) == 2


def test_format_key_overrides_detection(tmp_path: Path, write_image) -> None:
    # A flat folder is not detected, but format: yolo reads labels beside the images.
    write_image(tmp_path / "flat" / "a.png")
    (tmp_path / "flat" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("val: flat\nnames: [a]\nformat: yolo\n")
    np.testing.assert_allclose(load_split(tmp_path / "data.yaml").records[0].boxes, [[16, 12, 48, 36]])


def test_task_must_fit_the_format(tmp_path: Path, make_dataset) -> None:
    data_yaml = make_dataset("yolo")
    data_yaml.write_text(data_yaml.read_text() + "task: classify\n")
    with pytest.raises(DataError, match="task 'classify' does not fit the yolo format") as info:
        load_split(data_yaml)
    assert info.value.entry is not None and info.value.entry.startswith("line ")


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_real_digit_images_boxes_point_at_the_digits(tmp_path: Path, digits_detection, fmt: str) -> None:
    records, pasted = digits_detection
    data_yaml = write_dataset(
        tmp_path, {"train": records[:6], "val": records[6:]}, ["zero", "one", "two"], fmt
    )
    for name, expected in (("train", records[:6]), ("val", records[6:])):
        split = load_split(data_yaml, name)
        assert split.num_boxes == sum(len(r.boxes) for r in expected)
        for got, want in zip(split.records, expected, strict=True):
            np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
            np.testing.assert_array_equal(got.class_ids, want.class_ids)
            image = cv2.imread(str(got.path), cv2.IMREAD_GRAYSCALE)
            assert image.shape == (got.height, got.width)
            for box, digit in zip(got.boxes.round().astype(int), pasted[want.image_id], strict=True):
                crop = cv2.resize(
                    image[box[1] : box[3], box[0] : box[2]], (8, 8), interpolation=cv2.INTER_AREA
                )
                assert _correlation(crop, digit) > 0.9  # a box 4 px off scores below 0.2


def test_real_digit_class_folders(digits_folders: Path, digits) -> None:
    _, targets = digits
    train = load_split(digits_folders / "data.yaml", "train")
    val = load_split(digits_folders / "data.yaml", "val")
    assert train.task == val.task == "classify"
    assert train.names == ["one", "two", "zero"]  # sorted folder names without names:
    assert train.class_counts().tolist() == [30, 30, 30] and val.class_counts().tolist() == [10, 10, 10]
    digit_of = {"zero": 0, "one": 1, "two": 2}
    for record in val.records:
        index = int(record.path.stem.split("_")[1])
        assert digit_of[val.names[record.label]] == targets[index]
        assert (record.width, record.height) == (32, 32)
    named = digits_folders / "named.yaml"
    named.write_text((digits_folders / "data.yaml").read_text() + "names: [zero, one, two]\n")
    relabelled = load_split(named, "val")
    assert [r.label for r in relabelled.records] == [digit_of[r.path.parent.name] for r in val.records]


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc", "folders"])
def test_writers_keep_images_with_one_name_apart(tmp_path: Path, write_image, fmt: str) -> None:
    """Camera names repeat across sub-folders and pooled splits (IMG_1.JPG), and a.jpg / a.png
    share one label or annotation file: none may overwrite another, in one split or across the
    splits that VOC writes into one folder."""
    sources = ["x/IMG_1.JPG", "y/IMG_1.JPG", "y/img_1.jpg", "a.jpg", "a.png", "z/IMG_1.JPG"]
    records = []
    for i, name in enumerate(sources):
        width = 40 + 4 * i  # the size tells the images apart
        path = write_image(tmp_path / "src" / name, width, 30, seed=i)
        box = {"boxes": [[i, 1, i + 10, 20]], "class_ids": [i % 2]}
        label = {"label": i % 2} if fmt == "folders" else box
        records.append(ImageRecord(path, i + 1, width, 30, **label))
    data_yaml = write_dataset(tmp_path / "out", {"train": records[:5], "val": records[5:]}, ["p", "q"], fmt)

    for split, want in (("train", records[:5]), ("val", records[5:])):
        got = load_split(data_yaml, split).records
        assert len({r.path for r in got}) == len(want)
        by_width = {r.width: r for r in got}
        assert sorted(by_width) == sorted(r.width for r in want)
        for record in want:
            written = by_width[record.width]
            assert cv2.imread(str(written.path)).shape[:2] == (30, record.width)
            if fmt == "folders":
                assert written.label == record.label
            else:
                np.testing.assert_allclose(written.boxes, record.boxes, atol=1e-3)
    if fmt != "folders":  # there x/IMG_1.JPG and y/IMG_1.JPG go to different class folders
        names = {p.name for p in (tmp_path / "out").rglob("*") if p.suffix.lower() in (".jpg", ".png")}
        assert {"IMG_1.JPG", "IMG_1_2.JPG", "a.jpg", "a_2.png"} <= names
