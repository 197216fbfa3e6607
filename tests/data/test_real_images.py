"""Class-folder sets as Kaggle zips and macOS / Windows copies leave them, and the image files
real datasets hold (EXIF rotation, grey, CMYK, 16-bit, alpha, palette, truncated), with OpenCV
as the oracle for what training decodes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from data_exports import H, W, exif_jpeg, image, truncate
from PIL import Image

from edgecnn.data import load_split, read_image_size
from edgecnn.data.pipeline import read_image
from edgecnn.errors import DataError


def test_kaggle_style_class_folders_with_junk(tmp_path: Path) -> None:
    train = tmp_path / "train"
    image(train / "cat" / "1.jpg")
    image(train / "cat" / "nested" / "deeper" / "2.JPG")
    image(train / "dog" / "3.png")
    image(train / "dog" / "._3.png")  # macOS resource fork copy: hidden, ignored
    (train / "dog" / "._3.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (train / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (train / "cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (train / "cat" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    (train / "dog" / "license.txt").write_text("CC0\n")
    (train / "dog" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (train / "empty_class").mkdir()
    (train / ".ipynb_checkpoints").mkdir()
    (tmp_path / "data.yaml").write_text("train: train\n")
    split = load_split(tmp_path / "data.yaml", "train")
    assert split.task == "classify" and split.names == ["cat", "dog", "empty_class"]
    assert [(r.path.name, r.label) for r in split.records] == [("1.jpg", 0), ("2.JPG", 0), ("3.png", 1)]
    assert split.class_counts().tolist() == [2, 1, 0] and not split.skipped


def test_truncated_jpeg_is_refused_or_skipped(tmp_path: Path) -> None:
    image(tmp_path / "train" / "cat" / "ok.jpg")
    truncate(image(tmp_path / "train" / "cat" / "cut.jpg", 64, 64))
    (tmp_path / "data.yaml").write_text("train: train\n")
    with pytest.raises(DataError, match=r"cut.jpg: truncated JPEG"):
        load_split(tmp_path / "data.yaml", "train")
    split = load_split(tmp_path / "data.yaml", "train", skip_bad=True)
    assert [r.path.name for r in split.records] == ["ok.jpg"] and len(split.skipped) == 1


def test_jpeg_with_data_after_the_end_marker_is_fine(tmp_path: Path) -> None:
    """Phones append data after the image (Samsung, motion photos): not a truncated file."""
    path = image(tmp_path / "tail.jpg")
    path.write_bytes(path.read_bytes() + b"\x00\x00SEFH" + b"\x01" * 100)
    assert read_image_size(path) == (W, H)


def _pillow(path: Path, mode: str) -> Path:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, (H, W), dtype=np.uint16)).save(path)
    elif mode == "CMYK":
        Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8), "CMYK").save(path)
    else:
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).convert(mode).save(path)
    return path


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("grey.jpg", "L"),
        ("cmyk.jpg", "CMYK"),
        ("grey.png", "L"),
        ("rgba.png", "RGBA"),
        ("palette.png", "P"),
        ("la.png", "LA"),
        ("deep.png", "I;16"),
        ("grey.tif", "L"),
        ("one_bit.png", "1"),
    ],
)
def test_image_modes_read_as_8_bit_bgr_of_the_header_size(tmp_path: Path, name: str, mode: str) -> None:
    path = _pillow(tmp_path / name, mode)
    pixels = read_image(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (H, W, 3)
    assert read_image_size(path) == (W, H)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_header_size_equals_what_imread_decodes(tmp_path: Path, orientation: int) -> None:
    path = exif_jpeg(tmp_path / f"o{orientation}.jpg", orientation)
    decoded = cv2.imread(str(path))
    assert read_image_size(path) == (decoded.shape[1], decoded.shape[0])
    assert read_image(path).shape == decoded.shape
    assert read_image_size(path) == ((H, W) if orientation >= 5 else (W, H))


def test_yolo_boxes_on_an_exif_rotated_photo_follow_the_displayed_image(tmp_path: Path) -> None:
    """Ultralytics reads labels against the EXIF-corrected size; so does edgecnn (48x64 here)."""
    exif_jpeg(tmp_path / "images" / "val" / "p.jpg", 6)
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val" / "p.txt").write_text("0 0.5 0.5 1 0.5\n")
    (tmp_path / "data.yaml").write_text("val: images/val\nnames: [x]\n")
    record = load_split(tmp_path / "data.yaml").records[0]
    assert (record.width, record.height) == (H, W)
    np.testing.assert_allclose(record.boxes, [[0, 16, 48, 48]])


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_in_png_webp_tiff_matches_what_training_decodes(
    tmp_path: Path, fmt: str, orientation: int
) -> None:
    path = tmp_path / f"o.{fmt.lower()}"
    exif = Image.Exif()
    exif[0x0112] = orientation
    pixels = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, fmt, exif=exif.tobytes())
    decoded = read_image(path)
    assert read_image_size(path) == (decoded.shape[1], decoded.shape[0])


@pytest.mark.parametrize("suffix", [".png", ".webp", ".bmp", ".gif", ".tif"])
def test_other_formats_cut_short_are_unreadable_images(tmp_path: Path, suffix: str) -> None:
    path = truncate(image(tmp_path / f"cut{suffix}"))
    with pytest.raises(DataError, match=r"cut\.\w+: unreadable image"):
        read_image_size(path)


def test_png_with_data_after_the_end_chunk_is_fine(tmp_path: Path) -> None:
    path = image(tmp_path / "tail.png")
    path.write_bytes(path.read_bytes() + b"trailing bytes")
    assert read_image_size(path) == (W, H)


def test_data_check_reports_a_truncated_image_and_dropped_boxes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    image(tmp_path / "images" / "val" / "a.jpg")
    truncate(image(tmp_path / "images" / "val" / "b.jpg"))
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n0 0.5 0.5 0 0.5\n")
    (tmp_path / "data.yaml").write_text("val: images/val\nnames: [x]\n")
    runner = CliRunner()
    failed = runner.invoke(app, ["data", "check", str(tmp_path / "data.yaml")])
    assert failed.exit_code == 2 and "b.jpg: truncated JPEG" in failed.output
    result = runner.invoke(
        app, ["data", "check", str(tmp_path / "data.yaml"), "--skip-bad"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert (
        result.output.splitlines()[0]
        == "val: yolo detect, 1 images, 1 boxes, 1 skipped, 1 empty boxes dropped"
    )
