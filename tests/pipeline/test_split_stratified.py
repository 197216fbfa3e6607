"""Stratified splitting: sizes within one image, every class in every split, determinism,
disjoint splits; ``edgecnn data split`` writes a dataset that reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.data import ImageRecord, load_split, load_splits
from edgecnn.data.split import parse_ratios, split_counts, split_dataset, stratified_split
from edgecnn.errors import UserError

runner = CliRunner()


def _pool(seed: int = 0, n: int = 200, num_classes: int = 6) -> list[ImageRecord]:
    """Detection records with skewed class frequencies (class 5 in about 4 % of images), some
    images without boxes, several classes per image."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])[:num_classes]
    records = []
    for i in range(n):
        k = int(rng.integers(0, 4))
        classes = rng.choice(num_classes, size=k, p=weights / weights.sum())
        boxes = [[j, j, j + 5, j + 5] for j in range(k)]
        records.append(
            ImageRecord(Path(f"img_{i:04d}.jpg"), i + 1, 64, 64, boxes or np.zeros((0, 4)), classes)
        )
    return records


def _classes(records: list[ImageRecord]) -> set[int]:
    return {int(c) for r in records for c in r.class_ids}


@pytest.mark.parametrize("ratios", [(0.7, 0.2, 0.1), (0.8, 0.2), (0.6, 0.25, 0.15), (0.5, 0.0, 0.5)])
@pytest.mark.parametrize("n", [37, 200])
def test_sizes_within_one_image_and_every_class_in_every_split(ratios, n) -> None:
    pool = _pool(n=n)
    parts = stratified_split(pool, "detect", 6, ratios, seed=1)
    names = [name for name, r in zip(("train", "val", "test"), ratios, strict=False) if r > 0]
    assert list(parts) == names
    positive = [r for r in ratios if r > 0]
    for (name, records), ratio in zip(parts.items(), positive, strict=True):
        assert abs(len(records) - n * ratio) < 1, name
    ids = [r.image_id for records in parts.values() for r in records]
    assert sorted(ids) == list(range(1, n + 1))  # each image in exactly one split
    for name, records in parts.items():
        present = _classes(records)
        for c in range(6):
            holders = sum(c in r.class_ids for r in pool)
            if holders >= len(parts):
                assert c in present, f"class {c} ({holders} images) missing from {name}"


def test_class_shares_follow_the_ratios() -> None:
    pool = _pool(n=600)
    parts = stratified_split(pool, "detect", 6, (0.7, 0.2, 0.1), seed=0)
    for c in range(6):
        holders = np.array([sum(c in r.class_ids for r in records) for records in parts.values()])
        np.testing.assert_allclose(holders / holders.sum(), [0.7, 0.2, 0.1], atol=0.05)


def test_deterministic_per_seed() -> None:
    pool = _pool()

    def ids(seed: int) -> list[list[int]]:
        return [
            [r.image_id for r in v]
            for v in stratified_split(pool, "detect", 6, (0.7, 0.2, 0.1), seed).values()
        ]

    assert ids(3) == ids(3)
    assert ids(3) != ids(4)


def test_classification_stratifies_on_the_label() -> None:
    labels = [0] * 50 + [1] * 30 + [2] * 10 + [3] * 3
    pool = [ImageRecord(Path(f"{i}.png"), i + 1, 8, 8, label=label) for i, label in enumerate(labels)]
    parts = stratified_split(pool, "classify", 4, (0.6, 0.2, 0.2), seed=0)
    counts = {name: np.bincount([r.label for r in v], minlength=4).tolist() for name, v in parts.items()}
    assert {name: sum(c) for name, c in counts.items()} == {"train": 56, "val": 19, "test": 18}
    for name, ratio in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        # Each class within one image of its share (3 images of class 3: one per split).
        assert np.abs(np.array(counts[name]) - np.array([50, 30, 10, 3]) * ratio).max() <= 1, counts


@pytest.mark.parametrize(
    ("sizes", "ratios"),
    [
        ([12, 12, 12, 12], (0.7, 0.2, 0.1)),  # equal classes: each used to round into train
        ([20] * 7, (0.7, 0.2, 0.1)),
        ([25, 31, 17, 40, 12], (0.6, 0.2, 0.2)),
        ([33, 18, 27], (0.8, 0.2)),
    ],
)
def test_every_class_keeps_its_share_in_every_split(sizes: list[int], ratios: tuple[float, ...]) -> None:
    labels = [c for c, n in enumerate(sizes) for _ in range(n)]
    pool = [ImageRecord(Path(f"{i}.png"), i + 1, 8, 8, label=label) for i, label in enumerate(labels)]
    for seed in range(3):
        parts = stratified_split(pool, "classify", len(sizes), ratios, seed=seed)
        for (name, records), ratio in zip(parts.items(), ratios, strict=True):
            counts = np.bincount([r.label for r in records], minlength=len(sizes))
            deviation = np.abs(counts - np.array(sizes) * ratio)
            assert deviation.max() < 1, (seed, name, counts.tolist())
            assert abs(len(records) - len(pool) * ratio) < 1


def test_a_class_too_small_for_every_split_goes_to_train_first() -> None:
    labels = [0] * 30 + [1] * 20 + [2] + [3] * 2
    pool = [ImageRecord(Path(f"{i}.png"), i + 1, 8, 8, label=label) for i, label in enumerate(labels)]
    for seed in range(5):
        parts = stratified_split(pool, "classify", 4, (0.7, 0.2, 0.1), seed=seed)
        train = [r.label for r in parts["train"]]
        assert train.count(2) == 1 and train.count(3) >= 1, seed  # never a class left out of training


def test_split_counts_and_ratios() -> None:
    assert split_counts(10, [0.7, 0.2, 0.1]) == [7, 2, 1]
    assert split_counts(11, [0.7, 0.2, 0.1]) == [8, 2, 1]
    assert sum(split_counts(1003, [0.33, 0.33, 0.34])) == 1003
    assert parse_ratios("0.8,0.2") == [0.8, 0.2]
    for bad in ("0.5,0.6", "a,b", "1", "0.5,-0.1,0.6"):
        with pytest.raises(UserError, match="--ratios"):
            parse_ratios(bad)
    with pytest.raises(UserError, match="val split no image"):
        stratified_split(_pool(n=5), "detect", 6, (0.9, 0.05, 0.05))


def test_split_dataset_writes_a_dataset_that_reads_back(synth_root: Path, tmp_path: Path) -> None:
    pool = load_split(synth_root, "train")
    report = split_dataset(synth_root, tmp_path / "out", (0.5, 0.3, 0.2), seed=0, format="yolo")
    assert report.images == {"train": 20, "val": 12, "test": 8}
    splits = load_splits(report.data_yaml)
    assert {name: len(s) for name, s in splits.items()} == report.images
    names = [r.path.name for s in splits.values() for r in s.records]
    assert sorted(names) == sorted(r.path.name for r in pool.records)  # each image once
    for name, s in splits.items():
        assert s.format == "yolo" and s.names == pool.names
        assert s.class_counts().tolist() == report.classes[name]
        assert (s.class_counts() > 0).all(), name
    with pytest.raises(UserError, match="not an empty folder"):
        split_dataset(synth_root, tmp_path / "out")
    with pytest.raises(UserError, match="cannot write a detect dataset as folders"):
        split_dataset(synth_root, tmp_path / "other", format="folders")


def test_cli_split_classification_pool(synth_cls_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cls"
    result = runner.invoke(
        app,
        ["data", "split", str(synth_cls_root), "--out", str(out), "--ratios", "0.6,0.2,0.2", "--seed", "1"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"wrote folders train 18, val 6, test 6 images to {out}; dataset file: {out / 'data.yaml'}"
    )
    splits = load_splits(out / "data.yaml")
    for s in splits.values():
        assert s.task == "classify" and s.class_counts().tolist() == [len(s) // 3] * 3


def test_cli_split_pools_several_splits_and_reports_errors(synth_root: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    split_dataset(synth_root, first, (0.5, 0.5), seed=0)
    out = tmp_path / "again"
    args = [
        "data",
        "split",
        str(first / "data.yaml"),
        "--out",
        str(out),
        "--from",
        "train,val",
        "--format",
        "coco",
    ]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sum(len(s) for s in load_splits(out / "data.yaml").values()) == 40
    bad = runner.invoke(app, ["data", "split", str(first / "data.yaml"), "--out", str(out)])
    assert bad.exit_code == 2 and "not an empty folder" in bad.output


def test_cli_split_pools_splits_whose_file_names_repeat(tmp_path: Path) -> None:
    """Camera names (IMG_0001.JPG) repeat between a set's train and val folders: pooling them
    keeps every image, renamed where two meet, instead of stopping half-written."""
    import cv2

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            for i in range(3):
                path = tmp_path / "src" / split / cls / f"IMG_{i:04d}.JPG"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), rng.integers(0, 255, (20, 24, 3), dtype=np.uint8))
    (tmp_path / "src" / "data.yaml").write_text("train: train\nval: val\n")
    out = tmp_path / "out"
    args = ["data", "split", str(tmp_path / "src" / "data.yaml"), "--out", str(out), "--from", "train,val"]
    result = runner.invoke(app, [*args, "--ratios", "0.5,0.5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    splits = load_splits(out / "data.yaml")
    assert sum(len(s) for s in splits.values()) == 12
    assert sum(s.class_counts().tolist() == [3, 3] for s in splits.values()) == 2


def test_a_class_in_as_many_images_as_splits_lands_in_each() -> None:
    pool = _pool(n=60, num_classes=3)
    for i in (5, 17, 40):  # class 3 in exactly three images
        record = pool[i]
        pool[i] = ImageRecord(
            record.path,
            record.image_id,
            64,
            64,
            [*record.boxes.tolist(), [1, 1, 9, 9]],
            [*record.class_ids, 3],
        )
    for seed in range(5):
        parts = stratified_split(pool, "detect", 4, (0.7, 0.2, 0.1), seed=seed)
        assert [3 in _classes(records) for records in parts.values()] == [True, True, True]
