"""Pascal VOC as VOC2007/2012, LabelImg, CVAT and Roboflow write it; difficult boxes scored as
the VOC protocol does (ignored)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_exports import H, W, exif_jpeg, image, voc_xml

from edgecnn.data import load_split
from edgecnn.errors import DataError
from edgecnn.metrics.results_file import score_predictions_file


def _voc2007(root: Path) -> None:
    image(root / "JPEGImages" / "000005.jpg")
    voc_xml(
        root / "Annotations" / "000005.xml",
        "000005.jpg",
        [
            {"name": "chair", "box": (1, 1, 64, 48), "truncated": 1, "difficult": 0},
            {"name": " chair\n", "box": (10.5, 5, 273.5 / 10, 20), "occluded": 1},  # whitespace, floats
            {
                "name": "Person",
                "box": (30, 10, 50, 40),
                "difficult": 1,  # other case; person layout
                "parts": [("head", (35, 10, 45, 18)), ("hand", (30, 30, 34, 34))],
            },
        ],
    )
    image(root / "JPEGImages" / "000007.png", 32, 24)  # a PNG in JPEGImages, no <size>, depth 1
    voc_xml(root / "Annotations" / "000007.xml", "000007.jpg", [{"name": "dog", "box": (2, 2, 10, 10)}], None)
    image(root / "JPEGImages" / "000009.jpg")
    voc_xml(root / "Annotations" / "000009.xml", "000009.jpg", [], (W, H, 1))
    lists = root / "ImageSets" / "Main"
    lists.mkdir(parents=True)
    (lists / "val.txt").write_bytes(b"000005 \r\n000007\r\n\r\n000009\r\n")
    (lists / "chair_val.txt").write_text("000005  1\n000007 -1\n000009  0\n")


def test_voc2007_style_folder(tmp_path: Path) -> None:
    _voc2007(tmp_path / "VOC2007")
    (tmp_path / "data.yaml").write_text("val: VOC2007\nnames: [chair, dog, person]\n")
    split = load_split(tmp_path / "data.yaml")
    assert split.format == "voc" and [r.path.name for r in split.records] == [
        "000005.jpg",
        "000007.png",
        "000009.jpg",
    ]
    r5, r7, r9 = split.records
    # 1-based inclusive corners: xmin=1..xmax=64 is the full width; <part> boxes are not objects.
    np.testing.assert_allclose(r5.boxes, [[0, 0, 64, 48], [9.5, 4, 27.35, 20], [29, 9, 50, 40]], atol=1e-5)
    assert r5.class_ids.tolist() == [0, 0, 2] and r5.difficult.tolist() == [False, False, True]
    assert (r7.width, r7.height) == (32, 24) and r7.class_ids.tolist() == [1]
    assert len(r9.boxes) == 0


def test_size_zero_is_unknown_and_whole_floats_are_sizes(tmp_path: Path) -> None:
    image(tmp_path / "a.jpg", 32, 24)
    voc_xml(tmp_path / "a.xml", "a.jpg", [{"name": "dog", "box": (1, 1, 32, 24)}], (0, 0, 3))  # size unknown
    image(tmp_path / "b.jpg", 32, 24)
    voc_xml(tmp_path / "b.xml", "b.jpg", [{"name": "dog", "box": (1, 1, 8, 8)}], (32.0, 24.0, 3))
    (tmp_path / "data.yaml").write_text("val: .\nnames: [dog]\n")
    split = load_split(tmp_path / "data.yaml")
    assert [(r.width, r.height) for r in split.records] == [(32, 24), (32, 24)]


def test_class_image_set_list_with_flags_column(tmp_path: Path) -> None:
    _voc2007(tmp_path / "VOC2007")
    (tmp_path / "data.yaml").write_text(
        "val: VOC2007/ImageSets/Main/chair_val.txt\nnames: [chair, dog, person]\n"
    )
    assert len(load_split(tmp_path / "data.yaml").records) == 3  # every image of the split, as val.txt


def test_class_name_matching_is_exact_then_case_insensitive(tmp_path: Path) -> None:
    _voc2007(tmp_path / "VOC2007")
    (tmp_path / "data.yaml").write_text("val: VOC2007\nnames: [chair, dog, person, PERSON]\n")
    with pytest.raises(DataError, match=r"000005.xml \(object 3\): class 'Person' not in names"):
        load_split(tmp_path / "data.yaml")  # ambiguous: person and PERSON


def test_roboflow_voc_export_images_and_xml_side_by_side(tmp_path: Path) -> None:
    for split in ("train", "valid"):
        image(tmp_path / split / "a_jpg.rf.1.jpg")
        voc_xml(
            tmp_path / split / "a_jpg.rf.1.xml", "a_jpg.rf.1.jpg", [{"name": "dog", "box": (1, 1, 32, 24)}]
        )
    (tmp_path / "data.yaml").write_text("train: train\nval: valid\nnames: [cat, dog]\n")
    split = load_split(tmp_path / "data.yaml")
    assert split.format == "voc" and split.records[0].class_ids.tolist() == [1]
    np.testing.assert_allclose(split.records[0].boxes, [[0, 0, 32, 24]])


def test_cvat_voc_export_default_image_set(tmp_path: Path) -> None:
    image(tmp_path / "JPEGImages" / "frame_000000.PNG")
    voc_xml(
        tmp_path / "Annotations" / "frame_000000.xml",
        "frame_000000.PNG",
        [{"name": "cat", "box": (1, 1, 5, 5)}],
    )
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "default.txt").write_text("frame_000000\n")
    (tmp_path / "labelmap.txt").write_text("# label:color_rgb:parts:actions\ncat:0,0,0::\n")
    (tmp_path / "data.yaml").write_text("val: .\ntrain: .\nnames: [cat]\n")
    for split in ("train", "val"):
        assert len(load_split(tmp_path / "data.yaml", split).records) == 1


def test_image_ids_with_spaces_in_the_image_set_list(tmp_path: Path) -> None:
    """CVAT (and write_voc) list file stems as they are: ``photo 1 é`` is one id, not ``photo``
    with a flag column; a class list's ``id  1`` still names ``id``."""
    for stem in ("photo 1 é", "photo", "2008_000008"):
        image(tmp_path / "JPEGImages" / f"{stem}.jpg")
        cat = [{"name": "cat", "box": (1, 1, 5, 5)}]
        voc_xml(tmp_path / "Annotations" / f"{stem}.xml", f"{stem}.jpg", cat)
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "default.txt").write_text("photo 1 é\r\n2008_000008\r\n")
    (tmp_path / "ImageSets" / "Main" / "cat_val.txt").write_text("photo  1\n2008_000008 -1\n")
    (tmp_path / "data.yaml").write_text("train: .\nval: ImageSets/Main/cat_val.txt\nnames: [cat]\n")
    assert [r.path.name for r in load_split(tmp_path / "data.yaml", "train").records] == [
        "2008_000008.jpg",
        "photo 1 é.jpg",
    ]
    assert [r.path.name for r in load_split(tmp_path / "data.yaml", "val").records] == [
        "2008_000008.jpg",
        "photo.jpg",
    ]


def test_write_voc_round_trips_file_names_with_spaces(tmp_path: Path) -> None:
    from edgecnn.data import write_dataset

    image(tmp_path / "src" / "images" / "val" / "my photo.jpg")
    (tmp_path / "src" / "labels" / "val").mkdir(parents=True)
    (tmp_path / "src" / "labels" / "val" / "my photo.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "src" / "data.yaml").write_text("val: images/val\nnames: [cat]\n")
    source = load_split(tmp_path / "src" / "data.yaml")
    write_dataset(tmp_path / "out", {"val": source.records}, source.names, "voc")
    again = load_split(tmp_path / "out" / "data.yaml")
    assert [r.path.name for r in again.records] == ["my photo.jpg"]
    np.testing.assert_allclose(again.records[0].boxes, source.records[0].boxes)


def test_missing_image_set_names_the_lists_present(tmp_path: Path) -> None:
    _voc2007(tmp_path / "VOC2007")
    (tmp_path / "data.yaml").write_text("train: VOC2007\nnames: [chair, dog, person]\n")
    with pytest.raises(
        DataError, match=r"ImageSets/Main/train.txt: image-set list not found.*chair_val, val"
    ):
        load_split(tmp_path / "data.yaml", "train")


def test_labelimg_size_of_the_unrotated_photo_is_refused(tmp_path: Path) -> None:
    """LabelImg shows photos without applying EXIF orientation and writes the stored size."""
    exif_jpeg(tmp_path / "VOC" / "JPEGImages" / "p.jpg", 8)
    voc_xml(
        tmp_path / "VOC" / "Annotations" / "p.xml",
        "p.jpg",
        [{"name": "cat", "box": (1, 1, 60, 40)}],
        (W, H, 3),
    )
    (tmp_path / "VOC" / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "VOC" / "ImageSets" / "Main" / "val.txt").write_text("p\n")
    (tmp_path / "data.yaml").write_text("val: VOC\nnames: [cat]\n")
    with pytest.raises(DataError, match=r"p.xml \(size\): .*EXIF orientation 8"):
        load_split(tmp_path / "data.yaml")


def test_difficult_boxes_are_ignored_in_scoring_as_in_the_voc_protocol(tmp_path: Path) -> None:
    image(tmp_path / "JPEGImages" / "a.jpg")
    voc_xml(
        tmp_path / "Annotations" / "a.xml",
        "a.jpg",
        [
            {"name": "cat", "box": (1, 1, 20, 20)},
            {"name": "cat", "box": (31, 11, 60, 40), "difficult": 1},
            {"name": "cat", "box": (41, 1, 60, 8), "difficult": 1},
        ],
    )
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("a\n")
    (tmp_path / "data.yaml").write_text("val: .\nnames: [cat]\n")
    # One detection on the plain box, one on a difficult box, none on the other difficult box.
    results = [
        {"image_id": 1, "category_id": 0, "bbox": [0, 0, 20, 20], "score": 0.9},
        {"image_id": 1, "category_id": 0, "bbox": [30, 10, 30, 30], "score": 0.95},
    ]
    (tmp_path / "res.json").write_text(json.dumps(results))
    report = score_predictions_file(tmp_path / "res.json", tmp_path / "data.yaml")
    assert report["map50"] == pytest.approx(1.0) and report["per_class"]["cat"]["num_gt"] == 1


def test_crowd_and_difficult_boxes_are_not_training_targets(tmp_path: Path) -> None:
    from edgecnn.data.pipeline import _Source
    from edgecnn.runtime.spec import InputSpec

    image(tmp_path / "JPEGImages" / "a.jpg")
    boxes = [{"name": "cat", "box": (1, 1, 20, 20)}, {"name": "cat", "box": (31, 11, 60, 40), "difficult": 1}]
    voc_xml(tmp_path / "Annotations" / "a.xml", "a.jpg", boxes)
    (tmp_path / "data.yaml").write_text("val: .\nnames: [cat]\n")
    split = load_split(tmp_path / "data.yaml")
    assert split.records[0].ignore.tolist() == [False, True]
    decoded = _Source(split, InputSpec(width=W, height=H), cache=False).get(0)
    np.testing.assert_allclose(decoded.boxes, [[0, 0, 20, 20]])


def test_kaggle_voc_layout_lower_case_annotations_and_images(tmp_path: Path) -> None:
    """Kaggle's face-mask style set: annotations/*.xml + images/*.png, no ImageSets; it must not
    be mistaken for a YOLO folder (images/) and read as images without objects."""
    for i in range(2):
        image(tmp_path / "images" / f"maksssksksss{i}.png")
        voc_xml(
            tmp_path / "annotations" / f"maksssksksss{i}.xml",
            f"maksssksksss{i}.png",
            [{"name": "with_mask", "box": (1, 1, 20, 20)}],
        )
    (tmp_path / "data.yaml").write_text("train: .\nnames: [with_mask, without_mask]\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert split.format == "voc" and split.num_boxes == 2


@pytest.mark.parametrize(
    ("filename", "on_disk"),
    [
        ("caf\u00e9 1.jpg", "cafe\u0301 1.jpg"),  # composed in the XML, decomposed on disk (macOS)
        ("cafe\u0301 1.jpg", "caf\u00e9 1.jpg"),
        ("C:\\Users\\me\\labelling\\photo 1.jpg", "photo 1.jpg"),  # a path from the labelling machine
    ],
    ids=["nfc vs nfd", "nfd vs nfc", "windows path"],
)
def test_voc_filename_from_another_machine_is_found(tmp_path: Path, filename: str, on_disk: str) -> None:
    root = tmp_path / "VOC"
    image(root / "JPEGImages" / "decoy.jpg")  # the annotation's own stem names no image
    image(root / "JPEGImages" / on_disk, 32, 24)
    voc_xml(root / "Annotations" / "a1.xml", filename, [{"name": "dog", "box": (2, 2, 10, 10)}], None)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("a1\n")
    (tmp_path / "data.yaml").write_text("val: VOC\nnames: [dog]\n")
    (record,) = load_split(tmp_path / "data.yaml").records
    assert record.path == root / "JPEGImages" / on_disk and (record.width, record.height) == (32, 24)
