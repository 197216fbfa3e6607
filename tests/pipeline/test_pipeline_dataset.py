"""make_dataset: the tensors equal the board's preprocessing, batches are deterministic per seed,
boxes stay on their pixels through augmentation end to end, targets and labels are right."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecnn.data import load_split
from edgecnn.data.augment import AugmentConfig
from edgecnn.runtime.preprocessing import preprocess
from edgecnn.runtime.spec import InputSpec

pytestmark = pytest.mark.tf

SPECS = [
    InputSpec(width=64, height=48),
    InputSpec(width=48, height=64, color_order="BGR", resize="stretch", mean=(10, 20, 30), std=(50, 60, 70)),
    InputSpec(width=64, height=64, channels=1, pad_value=0, mean=(127.5,), std=(127.5,)),
]


def _batches(ds, count: int | None = None) -> list:
    return list(ds.take(count).as_numpy_iterator() if count else ds.as_numpy_iterator())


@pytest.mark.parametrize("spec", SPECS, ids=["rgb-letterbox", "bgr-stretch-meanstd", "grey"])
def test_without_augmentation_tensors_equal_the_board_preprocessing(rect_split, spec) -> None:
    from edgecnn.data.pipeline import make_dataset

    for training in (False, True):  # evaluation, and training with the off preset
        ds = make_dataset(
            rect_split, spec, batch_size=4, training=training, augment=AugmentConfig.off(), shuffle=False
        )
        batches = _batches(ds)
        images = np.concatenate([b[0] for b in batches])
        boxes = np.concatenate([b[1]["boxes"] for b in batches])
        classes = np.concatenate([b[1]["classes"] for b in batches])
        count = len(rect_split) if not training else 4  # training drops the last partial batch
        assert images.shape == (count, spec.height, spec.width, spec.channels) and images.dtype == np.float32
        for k, record in enumerate(rect_split.records[:count]):
            expected, info = preprocess(cv2.imread(str(record.path)), spec)
            np.testing.assert_array_equal(images[k], expected[0])
            n = len(record.boxes)
            np.testing.assert_allclose(boxes[k, :n], info.to_input(record.boxes), rtol=1e-6)
            assert not boxes[k, n:].any() and (classes[k, n:] == -1).all()
            assert classes[k, :n].tolist() == record.class_ids.tolist()


def test_augmented_boxes_stay_on_their_rectangles_end_to_end(rect_split) -> None:
    from edgecnn.data.pipeline import make_dataset

    spec = InputSpec(width=64, height=48, pad_value=0)  # RGB; black pad so only rectangles are bright
    config = AugmentConfig(mosaic=1.0, degrees=0, hsv_h=0, hsv_s=0, hsv_v=0, min_area_ratio=0, min_box_size=0)
    ds = make_dataset(rect_split, spec, batch_size=6, augment=config, seed=4)
    checked = 0
    for images, targets in _batches(ds) + _batches(ds):
        pixels = np.rint(images * 255).astype(np.uint8)[..., ::-1]  # back to BGR 0..255
        for image, boxes, classes in zip(pixels, targets["boxes"], targets["classes"], strict=True):
            for box, cls in zip(boxes[classes >= 0], classes[classes >= 0], strict=True):
                if min(box[2] - box[0], box[3] - box[1]) < 3:
                    continue
                x1, y1 = max(int(box[0]) - 3, 0), max(int(box[1]) - 3, 0)
                x2, y2 = int(np.ceil(box[2])) + 3, int(np.ceil(box[3])) + 3
                ys, xs = np.nonzero(image[y1:y2, x1:x2, cls] >= 128)
                found = [xs.min() + x1, ys.min() + y1, xs.max() + 1 + x1, ys.max() + 1 + y1]
                np.testing.assert_allclose(found, box, atol=1.5)
                checked += 1
    assert checked > 10


def test_same_seed_same_batches_new_epoch_new_batches(synth_root) -> None:
    from edgecnn.data.pipeline import make_dataset

    split = load_split(synth_root, "train")
    spec = InputSpec(width=64, height=64)

    def first_two(seed: int, **kwargs):
        return _batches(make_dataset(split, spec, batch_size=8, seed=seed, **kwargs), 2)

    a, b, c = first_two(1), first_two(1), first_two(2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1]["boxes"], y[1]["boxes"])
    assert not np.array_equal(a[0][0], c[0][0])
    # Decoding from the in-memory cache or from disk gives the same batches.
    for x, y in zip(a, first_two(1, cache=False), strict=True):
        np.testing.assert_array_equal(x[0], y[0])
    ds = make_dataset(split, spec, batch_size=8, seed=1)
    epoch1, epoch2 = _batches(ds), _batches(ds)
    assert len(epoch1) == len(epoch2) == 5
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])


def test_target_fn_runs_per_sample_on_the_augmented_boxes(synth_root) -> None:
    from edgecnn.data.pipeline import make_dataset

    split = load_split(synth_root, "train")
    spec = InputSpec(width=64, height=64)

    def targets(boxes: np.ndarray, classes: np.ndarray) -> dict[str, np.ndarray]:
        grid = np.zeros((4, 4), np.float32)
        for (x1, y1, x2, y2), c in zip(boxes, classes, strict=True):
            grid[int((y1 + y2) / 2 // 16), int((x1 + x2) / 2 // 16)] = c + 1
        return {"count": np.int32(len(boxes)), "grid": grid}

    plain = _batches(make_dataset(split, spec, batch_size=8, seed=3), 2)
    mapped = _batches(make_dataset(split, spec, batch_size=8, seed=3, target_fn=targets), 2)
    for (images, padded), (images2, out) in zip(plain, mapped, strict=True):
        np.testing.assert_array_equal(images, images2)
        assert out["count"].dtype == np.int32 and out["grid"].shape == (8, 4, 4)
        np.testing.assert_array_equal(out["count"], (padded["classes"] >= 0).sum(axis=1))
        for grid, boxes, classes in zip(out["grid"], padded["boxes"], padded["classes"], strict=True):
            n = int((classes >= 0).sum())
            np.testing.assert_array_equal(grid, targets(boxes[:n], classes[:n])["grid"])


def test_max_boxes_pads_and_truncates(synth_root) -> None:
    from edgecnn.data.pipeline import make_dataset

    split = load_split(synth_root, "train")
    ds = make_dataset(split, InputSpec(width=64, height=64), batch_size=40, training=False, max_boxes=2)
    ((_, targets),) = _batches(ds)
    expected = [min(len(r.boxes), 2) for r in split.records]
    assert targets["boxes"].shape == (40, 2, 4)
    assert (targets["classes"] >= 0).sum(axis=1).tolist() == expected


def test_classification_labels_int_and_one_hot(synth_cls_root) -> None:
    from edgecnn.data.pipeline import make_dataset

    split = load_split(synth_cls_root, "train")
    spec = InputSpec(width=32, height=32)
    labels = [r.label for r in split.records]
    batches = _batches(make_dataset(split, spec, batch_size=8, training=False))
    assert [len(b[0]) for b in batches] == [8, 8, 8, 6]
    assert np.concatenate([b[1] for b in batches]).tolist() == labels
    one_hot = _batches(make_dataset(split, spec, batch_size=8, training=False, one_hot=True))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in one_hot]), np.eye(3)[labels])
    # Training order is shuffled; each label still belongs to its image.
    tensors = [preprocess(cv2.imread(str(r.path)), spec)[0][0] for r in split.records]
    shuffled = _batches(make_dataset(split, spec, batch_size=8, seed=0, augment=AugmentConfig.off()))
    assert [len(b[0]) for b in shuffled] == [8, 8, 8]
    order = [
        next(k for k, t in enumerate(tensors) if np.array_equal(t, image))
        for images, _ in shuffled
        for image in images
    ]
    assert order != list(range(24)) and len(set(order)) == 24
    assert np.concatenate([b[1] for b in shuffled]).tolist() == [labels[k] for k in order]
    augmented = _batches(make_dataset(split, spec, batch_size=8, seed=0), 1)
    assert augmented[0][0].shape == (8, 32, 32, 3)


def test_the_image_cache_is_shared_by_datasets_of_the_same_split(rect_split, tmp_path) -> None:
    import shutil

    from edgecnn.data import ImageRecord, Split
    from edgecnn.data.pipeline import make_dataset

    records = []
    for r in rect_split.records:
        shutil.copy(r.path, tmp_path / r.path.name)
        records.append(
            ImageRecord(tmp_path / r.path.name, r.image_id, r.width, r.height, r.boxes, r.class_ids)
        )
    split = Split("train", "detect", "yolo", rect_split.names, records)
    spec = InputSpec(width=48, height=48)
    first = _batches(make_dataset(split, spec, batch_size=3, seed=0, cache=True))
    for r in records:
        r.path.unlink()
    # A new dataset per epoch (new seed) decodes nothing again.
    again = _batches(make_dataset(split, spec, batch_size=3, seed=1, cache=True))
    assert len(again) == len(first) == 2 and not np.array_equal(again[0][0], first[0][0])
    with pytest.raises(Exception, match="cannot read the image"):
        _batches(make_dataset(split, spec, batch_size=3, seed=1, cache=False))
