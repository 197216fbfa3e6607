"""``edgecnn calib build``: class balance, the manifest, the README, the size rules, and that the
representative dataset is the board's own preprocessing. No TensorFlow needed."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.data import ImageRecord, load_split, write_dataset
from edgecnn.data.pipeline import read_image
from edgecnn.errors import UserError
from edgecnn.quantize.calibration import (
    CalibrationRecord,
    build_calibration_set,
    calibration_tensors,
    check_calibration_fits,
    load_calibration_set,
    representative_dataset,
    select_balanced,
)
from edgecnn.runtime.preprocessing import preprocess
from edgecnn.runtime.spec import InputSpec, ModelSpec


def _noise(path: Path, seed: int, width: int = 40, height: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def _folders(root: Path, counts: dict[str, int]) -> Path:
    """Class folders with ``counts[name]`` distinct 40x30 noise PNGs each in train, 2 in val."""
    seed = 0
    for split, per_class in (("train", counts), ("val", dict.fromkeys(counts, 2))):
        for name, n in per_class.items():
            for k in range(n):
                seed += 1
                _noise(root / split / name / f"{name}_{k:03d}.png", seed)
    (root / "data.yaml").write_text("train: train\nval: val\nnames: [" + ", ".join(counts) + "]\n")
    return root / "data.yaml"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(folder: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("  ", 1)) for line in (folder / "manifest.txt").read_text().splitlines()]


def test_classification_set_takes_classes_in_turn(tmp_path: Path) -> None:
    data = _folders(tmp_path / "data", {"cat": 100, "dog": 30, "owl": 10})
    result = build_calibration_set(data, tmp_path / "calib", n=60)

    # Round-robin: the rare class gives all it has, the others split the rest evenly.
    by_class = {c.name: c.calib_images for c in result.coverage}
    assert by_class == {"cat": 25, "dog": 25, "owl": 10}
    entries = _manifest(tmp_path / "calib")
    assert len(entries) == 60 == len(result.calibration)
    sources = {_sha(r.path): r.path.parent.name for r in load_split(data, "train").records}
    assert Counter(sources[digest] for digest, _ in entries) == Counter(by_class)  # byte-exact copies
    for digest, rel in entries:
        assert rel.startswith("images/") and _sha(tmp_path / "calib" / rel) == digest


def test_detection_set_balances_boxes_per_class(tmp_path: Path) -> None:
    # 100 images of two "common" boxes, 20 with one "mid" box, 10 with a "rare" and a common
    # box, 10 without objects. Random sampling would take ~9 "mid" and ~4 "rare" images.
    records = []
    layout = [[0, 0]] * 100 + [[1]] * 20 + [[2, 0]] * 10 + [[]] * 10
    for i, classes in enumerate(layout):
        path = _noise(tmp_path / "src" / f"img_{i:03d}.png", i, 64, 48)
        boxes = [[4 + 10 * k, 4, 12 + 10 * k, 20] for k in range(len(classes))]
        records.append(ImageRecord(path, i + 1, 64, 48, boxes=boxes or np.zeros((0, 4)), class_ids=classes))
    data = write_dataset(
        tmp_path / "data", {"train": records, "val": records[:5]}, ["common", "mid", "rare"], "yolo"
    )

    result = build_calibration_set(data, tmp_path / "calib", n=60)

    cover = {c.name: c for c in result.coverage}
    assert cover["rare"].calib_images == 10 and cover["mid"].calib_images == 20  # every rare box
    assert cover["common"].split_boxes == 210 and cover["rare"].split_boxes == 10
    backgrounds = 60 - cover["common"].calib_images - cover["mid"].calib_images
    assert backgrounds == round(60 * 10 / 140)  # images without objects keep their share
    readme = (tmp_path / "calib" / "README.md").read_text()
    assert f"- source: `{data}`" in readme and "- split: train (140 images)" in readme
    assert "- images: 60" in readme
    assert "| rare | 10 | 10 | 10 | 10 |" in readme
    assert "| common | 110 | 210 |" in readme


def test_every_class_appears_even_when_small(tmp_path: Path) -> None:
    counts = {f"c{k}": 5 + 20 * k for k in range(6)}  # 5 .. 105 images
    data = _folders(tmp_path / "data", counts)
    result = build_calibration_set(data, tmp_path / "calib", n=50)
    assert all(c.calib_images >= 5 for c in result.coverage)


def test_same_seed_same_set_other_seed_other_set(tmp_path: Path) -> None:
    data = _folders(tmp_path / "data", {"a": 60, "b": 60})
    first = _manifest(build_calibration_set(data, tmp_path / "s0", n=50, seed=0).calibration.root)
    again = _manifest(build_calibration_set(data, tmp_path / "s0b", n=50, seed=0).calibration.root)
    other = _manifest(build_calibration_set(data, tmp_path / "s1", n=50, seed=1).calibration.root)
    assert first == again
    assert {d for d, _ in first} != {d for d, _ in other}


def test_select_balanced_takes_everything_when_n_exceeds_the_split() -> None:
    labels = [np.array([k % 3]) for k in range(7)]
    assert sorted(select_balanced(labels, 3, 10)) == list(range(7))


def test_fewer_than_50_refused_without_force(tmp_path: Path, run_cli) -> None:
    data = _folders(tmp_path / "data", {"a": 20, "b": 20})
    result = run_cli("calib", "build", "--data", data, "--out", tmp_path / "calib", "--n", 200)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "40 images" in lines[0] and "at least 50" in lines[0] and "--force" in lines[0]
    assert not (tmp_path / "calib").exists()

    result = _calib_process(data, tmp_path / "calib", "--force")
    assert result.returncode == 0, result.stderr
    assert "recommends about 100-500" in result.stderr
    assert len(_manifest(tmp_path / "calib")) == 40


def _calib_process(data: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """``edgecnn calib build`` in a child process: its stderr as a user sees it (logging included)."""
    cmd = [sys.executable, "-m", "edgecnn", "calib", "build", "--data", str(data), "--out", str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_warns_below_100_and_reports_coverage(tmp_path: Path, run_cli, caplog) -> None:
    data = _folders(tmp_path / "data", {"a": 40, "b": 40})
    result = _calib_process(data, tmp_path / "calib", "--n", "60")
    assert result.returncode == 0
    assert result.stderr.count("only 60 calibration images") == 1  # logged once, not echoed again
    assert "60 images from the train split" in result.stdout and "2 of 2 classes covered" in result.stdout
    with caplog.at_level(logging.WARNING, logger="edgecnn.quantize.calibration"):
        result = build_calibration_set(data, tmp_path / "calib100", n=80)
    assert "only 80 calibration images" in caplog.text
    assert result.warnings


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    data = _folders(tmp_path / "data", {"a": 30, "b": 30})
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not an empty folder"):
        build_calibration_set(data, tmp_path / "calib", n=50)


def test_manifest_is_checked_when_the_set_is_used(tmp_path: Path) -> None:
    data = _folders(tmp_path / "data", {"a": 30, "b": 30})
    folder = build_calibration_set(data, tmp_path / "calib", n=50).calibration.root
    assert len(load_calibration_set(folder)) == 50
    _, first = _manifest(folder)[0]

    image = folder / first
    original = image.read_bytes()
    image.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(UserError, match=rf"{re.escape(first)}: sha256 differs from manifest\.txt"):
        load_calibration_set(folder)
    image.unlink()
    with pytest.raises(UserError, match=rf"{re.escape(first)}: listed in manifest\.txt but missing"):
        load_calibration_set(folder)
    image.write_bytes(original)
    (folder / "images" / "extra.png").write_bytes(original)
    with pytest.raises(UserError, match=r"extra\.png: not listed in manifest\.txt"):
        load_calibration_set(folder)
    (folder / "images" / "extra.png").unlink()

    manifest = folder / "manifest.txt"
    text = manifest.read_text()
    manifest.write_text(text + f"{'0' * 64}  ../../data/data.yaml\n")
    with pytest.raises(UserError, match="outside the calibration folder"):
        load_calibration_set(folder)
    manifest.write_text(text + "not a manifest line\n")
    with pytest.raises(UserError, match=r"manifest.txt \(line 51\)"):
        load_calibration_set(folder)
    manifest.unlink()
    with pytest.raises(UserError, match=r"no manifest\.txt"):
        load_calibration_set(folder)


def test_manifest_is_what_sha256sum_checks(tmp_path: Path) -> None:
    tool = shutil.which("sha256sum")
    if tool is None:
        pytest.skip("sha256sum not installed")
    data = _folders(tmp_path / "data", {"a": 30, "b": 30})
    folder = build_calibration_set(data, tmp_path / "calib", n=50).calibration.root
    proc = subprocess.run(
        [tool, "--strict", "-c", "manifest.txt"], cwd=folder, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": OK") == 50


def _classifier_spec(labels: list[str]) -> ModelSpec:
    from edgecnn.architectures import get_model_info

    return get_model_info("lenet_test").model_spec(labels)


def test_the_set_records_where_it_came_from_and_quantize_checks_it(tmp_path: Path, caplog) -> None:
    data = _folders(tmp_path / "data", {"cat": 25, "dog": 25})
    folder = build_calibration_set(data, tmp_path / "calib", n=50, seed=3).calibration.root
    doc = json.loads((folder / "calibration.json").read_text())
    assert doc == {
        "version": 1,
        "task": "classify",
        "names": ["cat", "dog"],
        "source": str(data.resolve()),
        "split": "train",
        "seed": 3,
        "images": 50,
        "image_size": {"min": [40, 30], "max": [40, 30]},
    }
    assert "calibration.json" in (folder / "README.md").read_text()
    calibration = load_calibration_set(folder)
    assert calibration.record == CalibrationRecord.load(folder / "calibration.json")
    assert check_calibration_fits(calibration, _classifier_spec(["cat", "dog"]), "m.keras") is True
    assert check_calibration_fits(calibration, _classifier_spec(["dog", "cat"]), "m.keras") is True
    with pytest.raises(UserError) as err:
        check_calibration_fits(calibration, _classifier_spec(["cat", "bird"]), "m.keras")
    assert str(err.value).startswith(
        f"{folder}: built from {data.resolve()} with 2 classify classes (cat, dog), but m.keras has "
        "2 classify classes (cat, bird); "
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edgecnn.quantize.calibration"):
        allowed = check_calibration_fits(calibration, _classifier_spec(["bird"]), "m.keras", True)
    assert allowed is False and len(caplog.records) == 1 and "used anyway" in caplog.text

    (folder / "calibration.json").write_text('{"task": "classify"}')
    with pytest.raises(UserError, match=r"calibration\.json: not a calibration record \(no 'names'\)"):
        load_calibration_set(folder)


def test_a_set_without_a_record_still_works_with_one_info_line(tmp_path: Path, caplog) -> None:
    # Hand-made: images and a manifest in sha256sum's format, nothing else (an older set has
    # a README too, but no calibration.json).
    folder = tmp_path / "hand"
    for k in range(3):
        _noise(folder / "images" / f"{k}.png", k)
    lines = [f"{_sha(p)}  images/{p.name}\n" for p in sorted((folder / "images").iterdir())]
    (folder / "manifest.txt").write_text("".join(lines))
    calibration = load_calibration_set(folder)
    assert len(calibration) == 3 and calibration.record is None
    with caplog.at_level(logging.DEBUG, logger="edgecnn.quantize.calibration"):
        assert check_calibration_fits(calibration, _classifier_spec(["a", "b"]), "m.keras") is None
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "no calibration.json" in caplog.text


@pytest.mark.parametrize(
    "spec",
    [
        InputSpec(width=32, height=32, color_order="RGB", mean=(127.5,), std=(127.5,)),
        InputSpec(width=48, height=24, color_order="BGR", mean=(10.0, 20.0, 30.0), std=(50.0, 60.0, 70.0)),
        InputSpec(width=28, height=28, channels=1, resize="stretch"),
        InputSpec(width=36, height=36, resize="letterbox", pad_value=0),
    ],
    ids=["rgb-mobilenet", "bgr-wide", "grey-stretch", "pad0"],
)
def test_representative_dataset_is_the_runtime_preprocessing(tmp_path: Path, spec: InputSpec) -> None:
    data = _folders(tmp_path / "data", {"a": 25, "b": 25})  # 40x30 sources: letterboxing pads
    calibration = load_calibration_set(build_calibration_set(data, tmp_path / "calib", n=50).calibration.root)
    seen = []
    samples = list(representative_dataset(calibration, spec, progress=seen.append)())
    assert len(samples) == 50 and seen[-1] == 50
    for path, sample in zip(calibration.images, samples, strict=True):
        (tensor,) = sample
        expected, _ = preprocess(cv2.imread(str(path), cv2.IMREAD_COLOR), spec)
        assert tensor.dtype == np.float32 and tensor.shape == (1, spec.height, spec.width, spec.channels)
        np.testing.assert_array_equal(tensor, expected)
    # The generator can be called again (the converter and the debugger each call it).
    again = next(iter(representative_dataset(calibration, spec)()))[0]
    np.testing.assert_array_equal(again, samples[0][0])
    assert len(list(calibration_tensors(calibration, spec, limit=3))) == 3
    # Letterboxing really happened: the padding rows hold the pad value, normalised.
    if spec.resize == "letterbox" and spec.width == spec.height:
        frame = read_image(calibration.images[0])
        assert frame.shape[:2] == (30, 40)
        pad = (spec.pad_value - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
        np.testing.assert_allclose(
            samples[0][0][0, 0, :, :], np.broadcast_to(pad, (spec.width, spec.channels))
        )


def test_classification_readme_has_no_repeated_columns_and_says_why_classes_are_missing(
    tmp_path: Path,
) -> None:
    # One label per image: the image and box columns were the same numbers twice under the
    # same heading ("train images | train images"). And with --n below the class count, a
    # class is missing because of --n, not because the split has too few images.
    data = _folders(tmp_path / "data", {"a": 3, "b": 3, "c": 3})
    result = build_calibration_set(data, tmp_path / "calib", n=2, force=True)
    readme = (tmp_path / "calib" / "README.md").read_text()
    assert "| class | train images | calibration images |\n|---|---:|---:|\n| a | 3 | 1 |" in readme
    assert "train images | train images" not in readme
    missing = [w for w in result.warnings if w.startswith("classes without")]
    assert missing == ["classes without a calibration image (2 images for 3 classes): c"]
