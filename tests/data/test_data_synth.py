"""`edgecnn data synth`: deterministic, loadable, with tight boxes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.data import load_split
from edgecnn.data.synth import (
    SHAPES,
    _draw_mask,
    _paste,
    image_rng,
    synth_detection_image,
    write_synth_dataset,
)
from edgecnn.errors import UserError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_differs(tmp_path: Path) -> None:
    a = write_synth_dataset(tmp_path / "a", n=12, imgsz=64, seed=3).parent
    b = write_synth_dataset(tmp_path / "b", n=12, imgsz=64, seed=3).parent
    c = write_synth_dataset(tmp_path / "c", n=12, imgsz=64, seed=4).parent
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_detection_set_loads_with_every_class_and_split(tmp_path: Path) -> None:
    data = write_synth_dataset(tmp_path, n=60, imgsz=96, num_classes=4, seed=1)
    sizes = {}
    for split in ("train", "val", "test"):
        loaded = load_split(data, split)
        assert loaded.format == "coco" and loaded.task == "detect"
        assert loaded.names == list(SHAPES[:4])
        sizes[split] = len(loaded)
    assert sizes == {"train": 42, "val": 12, "test": 6}
    train = load_split(data, "train")
    assert (train.class_counts() > 0).all()
    per_image = [len(r.boxes) for r in train.records]
    assert min(per_image) >= 1 and max(per_image) >= 3


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("x", "y"), [(10, 12), (-9, 30), (40, -7), (50, 55)])
def test_boxes_are_tight_around_the_drawn_shape(shape: str, x: int, y: int) -> None:
    """On a black canvas the returned box is exactly the extent of the bright shape pixels,
    including shapes cut by the image border."""
    canvas = np.zeros((80, 80, 3), np.uint8)
    mask = _draw_mask(shape, 36, np.random.default_rng(0))
    box = _paste(canvas, mask, x, y, np.array([255.0, 255.0, 255.0]))
    ys, xs = np.nonzero(canvas[..., 0] > 127)
    assert box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_generated_boxes_lie_inside_the_image() -> None:
    for index in range(30):
        img, objects = synth_detection_image(image_rng(7, index), 128, 96, 6)
        assert img.shape == (96, 128, 3) and objects
        for obj in objects:
            x1, y1, x2, y2 = obj.box
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
            assert 0 <= obj.class_id < 6


def test_labelled_shapes_stay_visible_and_boxes_are_their_visible_extent() -> None:
    """Each later shape hides at most 30 % of what an earlier one still shows, so no labelled
    shape is hidden behind others."""
    visible = []
    for index in range(60):
        _, objects = synth_detection_image(image_rng(5, index), 96, 96, 4, max_objects=5)
        for k, obj in enumerate(objects):
            later = len(objects) - 1 - k
            assert obj.visible >= 0.7**later - 1e-9, (index, k, obj)
            visible.append(obj.visible)
    visible = np.array(visible)
    assert (visible == 1.0).mean() > 0.5 and visible.min() >= 0.7**4


def test_classification_set_is_balanced(tmp_path: Path) -> None:
    data = write_synth_dataset(tmp_path, task="classify", n=40, imgsz=48, num_classes=4, ratios=(0.5, 0.5))
    train = load_split(data, "train")
    assert train.format == "folders" and train.task == "classify"
    counts = np.bincount([r.label for r in train.records], minlength=4)
    assert counts.tolist() == [5, 5, 5, 5]
    img = cv2.imread(str(train.records[0].path))
    assert img.shape == (48, 48, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_classes": 7}, "--classes"), ({"ratios": (0.5, 0.6)}, "--ratios"), ({"n": 0}, "n >= 1")],
)
def test_bad_arguments_are_user_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        write_synth_dataset(tmp_path, **kwargs)


def test_cli_writes_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["data", "synth", str(tmp_path / "s"), "--n", "10", "--imgsz", "32"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "data.yaml").exists()
    assert len(load_split(tmp_path / "s" / "data.yaml", "train")) == 7
