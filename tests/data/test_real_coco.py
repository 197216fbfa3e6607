"""COCO JSON as the official release, Roboflow, CVAT and Label Studio write it; evaluation of
crowd regions checked against pycocotools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from data_exports import H, W, exif_jpeg, image, write_json
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgecnn.data import load_split
from edgecnn.errors import DataError
from edgecnn.metrics.results_file import score_predictions_file


def _coco(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], categories: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "info": {"year": 2017, "version": "1.0", "description": "COCO 2017", "date_created": "2017/09/01"},
        "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "CC BY 2.0"}],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def _ann(ann_id: int, image_id: int, cat: int, bbox: list[float], **extra: Any) -> dict[str, Any]:
    return {"id": ann_id, "image_id": image_id, "category_id": cat, "bbox": bbox, **extra}


def test_official_coco_2017_style_file(tmp_path: Path) -> None:
    """Category ids 1..90 with gaps, crowd annotations with RLE, polygons, no-annotation images,
    ``area`` missing on some, float boxes, ``supercategory``, ``license``/``coco_url`` keys."""
    for i in (139, 285, 632):
        image(tmp_path / "val2017" / f"{i:012d}.jpg", seed=i)
    images = [
        {
            "license": 4,
            "file_name": f"{i:012d}.jpg",
            "coco_url": "http://x",
            "height": H,
            "width": W,
            "date_captured": "2013-11-21 01:34:01",
            "flickr_url": "http://y",
            "id": i,
        }
        for i in (632, 139, 285)
    ]
    polygon = [[10.5, 10.5, 30.25, 10.5, 30.25, 20.0, 10.5, 20.0]]
    rle = {"counts": [0, 10, 54], "size": [H, W]}
    anns = [
        _ann(1, 139, 1, [10.5, 10.5, 19.75, 9.5], segmentation=polygon, area=187.6, iscrowd=0),
        _ann(2, 139, 90, [0, 0, 64, 48], segmentation=rle, area=3072, iscrowd=1),
        _ann(3, 285, 64, [1.0, 2.0, 3.0, 4.0], iscrowd=0),  # no area, no segmentation
    ]
    categories = [
        {"supercategory": "person", "id": 1, "name": "person"},
        {"supercategory": "furniture", "id": 64, "name": "potted plant"},
        {"supercategory": "indoor", "id": 90, "name": "toothbrush"},
    ]
    write_json(tmp_path / "annotations" / "instances_val2017.json", _coco(images, anns, categories))
    (tmp_path / "data.yaml").write_text("val: annotations/instances_val2017.json\n")

    split = load_split(tmp_path / "data.yaml")
    assert split.names == ["person", "potted plant", "toothbrush"] and split.category_ids == [1, 64, 90]
    assert [r.image_id for r in split.records] == [139, 285, 632]
    r139, r285, r632 = split.records
    np.testing.assert_allclose(r139.boxes, [[10.5, 10.5, 30.25, 20.0], [0, 0, 64, 48]])
    assert r139.class_ids.tolist() == [0, 2] and r139.iscrowd.tolist() == [False, True]
    assert r285.class_ids.tolist() == [1] and len(r632.boxes) == 0


def test_roboflow_coco_export(tmp_path: Path) -> None:
    """Roboflow puts ``_annotations.coco.json`` inside each split folder beside the images and
    adds a category 0 named after the project, the supercategory of the real classes."""
    images, anns = [], []
    for split in ("train", "valid", "test"):
        image(tmp_path / split / f"img_{split}_jpg.rf.abc.jpg")
        images = [
            {
                "id": 0,
                "license": 1,
                "file_name": f"img_{split}_jpg.rf.abc.jpg",
                "height": H,
                "width": W,
                "date_captured": "2024-01-01T00:00:00+00:00",
            }
        ]
        anns = [_ann(0, 0, 2, [8, 8, 16, 16], area=256, segmentation=[], iscrowd=0)]
        categories = [
            {"id": 0, "name": "pets-x1y2", "supercategory": "none"},
            {"id": 1, "name": "cat", "supercategory": "pets-x1y2"},
            {"id": 2, "name": "dog", "supercategory": "pets-x1y2"},
        ]
        write_json(tmp_path / split / "_annotations.coco.json", _coco(images, anns, categories))
    (tmp_path / "data.yaml").write_text(
        "train: train/_annotations.coco.json\nval: valid/_annotations.coco.json\n"
        "test: test/_annotations.coco.json\n"
    )
    for split in ("train", "val", "test"):
        loaded = load_split(tmp_path / "data.yaml", split)
        assert loaded.names == ["cat", "dog"] and loaded.category_ids == [1, 2]
        assert loaded.records[0].image_id == 0 and loaded.records[0].class_ids.tolist() == [1]


@pytest.mark.parametrize(
    ("json_rel", "file_name", "image_rel"),
    [
        ("result.json", "images/a.jpg", "images/a.jpg"),  # Label Studio: prefix included
        ("annotations/instances_default.json", "sub/dir/a.jpg", "images/sub/dir/a.jpg"),  # CVAT folders
        ("annotations/instances_default.json", "a.jpg", "images/a.jpg"),  # CVAT
        ("result.json", "images\\a.jpg", "images/a.jpg"),  # Label Studio on Windows
        ("result.json", "/data/upload/1/a.jpg", "images/a.jpg"),  # a path on the labelling machine
    ],
)
def test_file_name_with_sub_folders_and_prefixes(
    tmp_path: Path, json_rel: str, file_name: str, image_rel: str
) -> None:
    image(tmp_path / image_rel)
    doc = _coco([{"id": 1, "file_name": file_name, "width": W, "height": H}], [], [{"id": 1, "name": "x"}])
    write_json(tmp_path / json_rel, doc)
    (tmp_path / "data.yaml").write_text(f"val: {json_rel}\n")
    assert load_split(tmp_path / "data.yaml").records[0].path == tmp_path / image_rel


def test_zero_size_boxes_are_dropped_and_counted_negative_ones_refused(tmp_path: Path) -> None:
    image(tmp_path / "a.jpg")
    anns = [_ann(1, 1, 1, [5, 5, 0, 10]), _ann(2, 1, 1, [5, 5, 10, 0.0]), _ann(3, 1, 1, [1, 1, 5, 5])]
    doc = _coco([{"id": 1, "file_name": "a.jpg", "width": W, "height": H}], anns, [{"id": 1, "name": "x"}])
    write_json(tmp_path / "labels.json", doc)
    (tmp_path / "data.yaml").write_text("val: labels.json\n")
    split = load_split(tmp_path / "data.yaml")
    np.testing.assert_allclose(split.records[0].boxes, [[1, 1, 6, 6]])
    assert len(split.dropped) == 2 and "(annotation id 1): box [5, 5, 0, 10]" in split.dropped[0]
    assert split.summary()["dropped"] == 2
    anns.append(_ann(4, 1, 1, [5, 5, -3, 10]))
    write_json(tmp_path / "labels.json", doc)
    with pytest.raises(DataError, match=r"\(annotation id 4\): box \[5, 5, -3, 10\] .* negative size"):
        load_split(tmp_path / "data.yaml")


def test_categories_versus_names(tmp_path: Path) -> None:
    image(tmp_path / "a.jpg")
    categories = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 9, "name": "unused"}]
    doc = _coco([{"id": 1, "file_name": "a.jpg"}], [_ann(1, 1, 7, [1, 1, 5, 5])], categories)
    write_json(tmp_path / "labels.json", doc)
    # A category absent from names is fine while no annotation uses it; a name without a category
    # gets a fresh id above the file's largest.
    (tmp_path / "data.yaml").write_text("val: labels.json\nnames: [dog, bird]\n")
    split = load_split(tmp_path / "data.yaml")
    assert split.category_ids == [7, 10] and split.records[0].class_ids.tolist() == [0]
    (tmp_path / "data.yaml").write_text("val: labels.json\nnames: [cat, bird]\n")
    with pytest.raises(DataError, match=r"\(annotation id 1\): category 'dog' \(id 7\) is not in names"):
        load_split(tmp_path / "data.yaml")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "1", "file_name": "a.jpg"}, r"\(images\[0\]\): an image needs an integer 'id'"),
        (
            {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
            r"\(image id 1\): the JSON gives 640x480 but .*a.jpg is 64x48",
        ),
    ],
)
def test_refused_image_entries(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    image(tmp_path / "a.jpg")
    write_json(tmp_path / "labels.json", _coco([entry], [], [{"id": 1, "name": "x"}]))
    (tmp_path / "data.yaml").write_text("val: labels.json\n")
    with pytest.raises(DataError, match=message):
        load_split(tmp_path / "data.yaml")


def test_exif_rotated_jpeg_sizes(tmp_path: Path) -> None:
    """A phone photo stored 64x48 with EXIF orientation 6 displays (and cv2.imread decodes) as
    48x64. A tool that applied the rotation writes 48x64 and its boxes fit; one that ignored it
    writes 64x48 and its boxes refer to pixels training never sees: refused, naming the cause."""
    exif_jpeg(tmp_path / "phone.jpg", 6)
    box = [_ann(1, 1, 1, [2, 40, 40, 20])]  # fits 48x64 only
    write_json(
        tmp_path / "ok.json",
        _coco([{"id": 1, "file_name": "phone.jpg", "width": H, "height": W}], box, [{"id": 1, "name": "x"}]),
    )
    write_json(
        tmp_path / "raw.json",
        _coco([{"id": 1, "file_name": "phone.jpg", "width": W, "height": H}], [], [{"id": 1, "name": "x"}]),
    )
    (tmp_path / "data.yaml").write_text("val: ok.json\ntest: raw.json\n")
    record = load_split(tmp_path / "data.yaml").records[0]
    assert (record.width, record.height) == (H, W)
    with pytest.raises(
        DataError, match=r"\(image id 1\): the JSON gives 64x48, .* EXIF orientation 6 turns it to 48x64"
    ):
        load_split(tmp_path / "data.yaml", "test")


def test_crowd_regions_score_like_pycocotools(tmp_path: Path) -> None:
    """Ground truth read by the loader, scored by edgecnn and by COCOeval: a crowd region that
    absorbs detections, an image without annotations holding a false positive, gapped ids."""
    for i in (1, 2, 3):
        image(tmp_path / "images" / f"{i}.jpg", seed=i)
    anns = [
        _ann(1, 1, 1, [2, 2, 20, 20], area=400, iscrowd=0),
        _ann(
            2, 1, 1, [30, 5, 30, 40], area=1200, iscrowd=1, segmentation={"counts": [0, 3072], "size": [H, W]}
        ),
        _ann(3, 2, 5, [10, 10, 20, 20], area=400, iscrowd=0),
        _ann(4, 2, 1, [40, 20, 10, 10], area=100, iscrowd=0),
    ]
    categories = [
        {"id": 1, "name": "person", "supercategory": "p"},
        {"id": 5, "name": "car", "supercategory": "v"},
    ]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": W, "height": H} for i in (1, 2, 3)]
    gt_path = write_json(tmp_path / "instances_val.json", _coco(images, anns, categories))
    results = [
        {"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 19], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [32, 6, 10, 10], "score": 0.8},  # inside the crowd
        {"image_id": 1, "category_id": 1, "bbox": [45, 20, 10, 20], "score": 0.7},  # inside the crowd
        {"image_id": 2, "category_id": 5, "bbox": [12, 10, 20, 18], "score": 0.6},
        {"image_id": 3, "category_id": 5, "bbox": [1, 1, 10, 10], "score": 0.65},  # no-annotation image
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 8, 8], "score": 0.5},
    ]
    res_path = tmp_path / "results.json"
    res_path.write_text(json.dumps(results))
    (tmp_path / "data.yaml").write_text("val: instances_val.json\n")

    ours = score_predictions_file(res_path, tmp_path / "data.yaml")
    coco = COCO(str(gt_path))
    ev = COCOeval(coco, coco.loadRes(str(res_path)), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ours["map50_95"] == pytest.approx(ev.stats[0], abs=1e-6)
    assert ours["map50"] == pytest.approx(ev.stats[1], abs=1e-6)


def test_bom_and_float_sizes(tmp_path: Path) -> None:
    """Files saved by Windows tools start with a BOM; some converters write sizes as floats."""
    image(tmp_path / "a.jpg")
    doc = _coco(
        [{"id": 1, "file_name": "a.jpg", "width": 64.0, "height": 48.0}], [], [{"id": 1, "name": "x"}]
    )
    (tmp_path / "labels.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    (tmp_path / "data.yaml").write_text("val: labels.json\n")
    record = load_split(tmp_path / "data.yaml").records[0]
    assert (record.width, record.height) == (W, H) and isinstance(record.width, int)
