"""The pictures a training run writes: the first training batch with its labels, and
validation images with ground truth and the model's detections."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.data import ImageRecord, Split, load_split
from edgecnn.data.augment import AugmentConfig
from edgecnn.data.pipeline import read_letterboxed
from edgecnn.runtime.preprocessing import preprocess
from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec
from edgecnn.sinks.draw import color_for
from edgecnn.train.preview import MIN_TILE, mosaic, to_bgr, write_train_batch, write_val_predictions


@pytest.mark.parametrize(
    "spec",
    [
        InputSpec(width=40, height=24, color_order="RGB", mean=(127.5,) * 3, std=(127.5,) * 3),
        InputSpec(width=40, height=24, color_order="BGR", mean=(0.0, 10.0, 20.0), std=(255.0, 1.0, 58.0)),
        InputSpec(width=24, height=24, channels=1, mean=(0.0,), std=(255.0,)),
    ],
)
def test_to_bgr_inverts_the_normalisation(spec: InputSpec) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    tensor, _ = preprocess(frame, spec)
    back = to_bgr(tensor[0], spec)
    resized, _ = _what_the_model_sees(frame, spec)
    np.testing.assert_array_equal(back, resized)


def _what_the_model_sees(frame: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, object]:
    """What the model sees, as BGR: the letterboxed frame (grey models: grey turned to BGR)."""
    from edgecnn.postprocess.letterbox import letterbox

    source = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if spec.channels == 1 else frame
    image, info = letterbox(source, spec.width, spec.height, pad_value=spec.pad_value)
    return (cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image), info


def test_mosaic_places_tiles_row_by_row() -> None:
    tiles = [np.full((3, 4, 3), 10 * (i + 1), np.uint8) for i in range(5)]
    grid = mosaic(tiles, gap=1)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 2, 3)  # ceil(sqrt(5)) = 3 columns, 2 rows
    assert (grid[0:3, 0:4] == 10).all() and (grid[0:3, 5:9] == 20).all() and (grid[4:7, 5:9] == 50).all()
    assert (grid[3] == 114).all() and (grid[:, 4] == 114).all()  # the gaps
    assert (grid[4:7, 10:14] == 114).all()  # no sixth tile
    with pytest.raises(ValueError, match="no tiles"):
        mosaic([])


def _one_image_split(tmp_path: Path) -> tuple[Split, ModelSpec]:
    image = np.full((48, 64, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    record = ImageRecord(tmp_path / "a.png", 1, 64, 48, [[8, 8, 40, 32]], [1])
    split = Split("train", "detect", "yolo", ["a", "b"], [record])
    spec = ModelSpec(
        task="detect",
        labels=["a", "b"],
        input=InputSpec(width=64, height=64),
        output=OutputSpec(layout="yolo_v3", strides=[32], anchors=[[(10, 10)]]),
    )
    return split, spec


@pytest.mark.tf
def test_train_batch_draws_each_label_where_the_model_sees_it(tmp_path: Path) -> None:
    split, spec = _one_image_split(tmp_path)
    path = write_train_batch(split, spec, AugmentConfig.off(), 0, tmp_path / "batch.jpg")
    picture = cv2.imread(str(path))
    k = -(-MIN_TILE // 64)  # 64 px tiles are enlarged 4x
    assert picture.shape == (64 * k, 64 * k, 3)
    # letterbox: 64x48 -> 64x48 with 8 px bands above and below; the box moves down by 8
    x1, y1, x2, y2 = (np.array([8, 16, 40, 40]) * k).tolist()
    colour = np.array(color_for(1), np.int16)
    edge = picture[(y1 + y2) // 2, x1 - 1 : x1 + 2].astype(np.int16)  # the left side of the box
    assert (np.abs(edge - colour).max(axis=1) < 40).any(), edge
    inside = picture[(y1 + y2) // 2, (x1 + x2) // 2].astype(np.int16)
    assert np.abs(inside - 90).max() < 8  # the image itself, untouched
    band = picture[2, (x1 + x2) // 2].astype(np.int16)
    assert np.abs(band - 114).max() < 8  # the letterbox padding


@pytest.mark.tf
@pytest.mark.slow
def test_val_predictions_of_an_overfitted_detector(
    overfit_detector: Path, overfit_data: Path, tmp_path: Path
) -> None:
    from edgecnn.evaluation.predictor import load_predictor

    predictor = load_predictor(overfit_detector / "model.keras")
    split = load_split(overfit_data, "train")
    path = write_val_predictions(predictor, split, predictor.spec, tmp_path / "val.jpg")
    picture = cv2.imread(str(path))
    k = -(-MIN_TILE // 96)
    tile = 96 * k
    assert picture.shape == (3 * tile + 4, 3 * tile + 4, 3)  # 8 images: 3 x 3 grid
    # The over-fitted model finds the first image's objects: class colours sit on its boxes.
    record = split.records[0]
    _, info = read_letterboxed(record.path, predictor.spec.input)
    first = picture[:tile, :tile].astype(np.int16)
    for box, cls in zip(info.to_input(record.boxes) * k, record.class_ids, strict=True):
        x1, y1, _, y2 = (round(float(v)) for v in box)
        column = first[y1 + 3 : y2 - 3, max(0, x1 - 3) : x1 + 4]
        near = np.abs(column - np.array(color_for(int(cls)), np.int16)).max(axis=2) < 50
        assert near.any(axis=1).mean() > 0.5, (box, cls)
