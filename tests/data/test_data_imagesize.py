"""Header-only image sizes, checked against what OpenCV decodes."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import pytest

from edgecnn.data import imagesize, read_image_size
from edgecnn.data.pipeline import read_image
from edgecnn.errors import DataError


def _cv2_size(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path))
    assert image is not None
    return image.shape[1], image.shape[0]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("a.png", {}),
        ("a.jpg", {}),
        ("progressive.jpg", {"IMWRITE_JPEG_PROGRESSIVE": 1}),
        ("a.bmp", {}),
        ("a.gif", {}),
        ("lossless.webp", {"IMWRITE_WEBP_QUALITY": 101}),
        ("lossy.webp", {"IMWRITE_WEBP_QUALITY": 80}),
    ],
)
@pytest.mark.parametrize(("width", "height"), [(64, 48), (37, 301)])
def test_header_size_matches_opencv_without_decoding(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_image,
    name: str,
    params: dict,
    width: int,
    height: int,
) -> None:
    path = write_image(tmp_path / name, width, height, **params)

    def no_decoding(_path: Path) -> tuple[int, int]:
        raise AssertionError("decoded instead of reading the header")

    expected = _cv2_size(path)
    monkeypatch.setattr(imagesize, "_size_by_decoding", no_decoding)
    assert read_image_size(path) == expected == (width, height)


def _with_exif_orientation(jpeg: bytes, orientation: int, padding: int = 0) -> bytes:
    """Insert an APP1 EXIF segment (little-endian TIFF, IFD0 with only Orientation) after SOI,
    with ``padding`` extra bytes in the segment (a large thumbnail, say)."""
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    segment = b"Exif\x00\x00" + tiff + struct.pack("<I", 0) + b"\x00" * padding
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + jpeg[2:]


@pytest.mark.parametrize(
    ("orientation", "expected"), [(1, (64, 48)), (3, (64, 48)), (6, (48, 64)), (8, (48, 64))]
)
def test_exif_rotation_reports_the_size_opencv_returns(
    tmp_path: Path, write_image, orientation: int, expected: tuple
) -> None:
    plain = write_image(tmp_path / "plain.jpg").read_bytes()
    path = tmp_path / "exif.jpg"
    path.write_bytes(_with_exif_orientation(plain, orientation))
    assert read_image_size(path) == _cv2_size(path) == expected


def test_jpeg_frame_header_beyond_the_first_read(tmp_path: Path, write_image) -> None:
    plain = write_image(tmp_path / "plain.jpg").read_bytes()
    path = tmp_path / "big_exif.jpg"
    # Two 60 kB segments push the frame header past the first 64 kB read.
    path.write_bytes(
        _with_exif_orientation(_with_exif_orientation(plain, 6, padding=60_000), 6, padding=60_000)
    )
    assert read_image_size(path) == _cv2_size(path) == (48, 64)


def test_other_formats_fall_back_to_decoding(tmp_path: Path, write_image) -> None:
    path = write_image(tmp_path / "a.tiff", 33, 21)
    assert read_image_size(path) == (33, 21)


def test_missing_and_unreadable_images_raise_data_error(tmp_path: Path, write_image) -> None:
    with pytest.raises(DataError, match="image file not found") as info:
        read_image_size(tmp_path / "nope.png")
    assert info.value.path.endswith("nope.png")
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not an image")
    with pytest.raises(DataError, match="unreadable image"):
        read_image_size(bogus)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(write_image(tmp_path / "whole.png").read_bytes()[:20])
    with pytest.raises(DataError, match="unreadable image"):
        read_image_size(truncated)


def test_headers_opencv_raises_on_are_unreadable_images(tmp_path: Path) -> None:
    # A GIF header of 65535 x 59903 pixels, cut short (found by fuzzing): cv2.imdecode raises
    # cv2.error ("pixels <= CV_IO_MAX_IMAGE_PIXELS") instead of returning None.
    path = tmp_path / "huge.gif"
    path.write_bytes(bytes.fromhex("474946383961ffffffe90000003b2e97529f2af04c87e8d69a9ceaf7f5e8"))
    with pytest.raises(DataError, match="unreadable image"):
        read_image_size(path)
    with pytest.raises(DataError, match="cannot read the image"):
        read_image(path)


def test_paths_that_are_not_files_are_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")  # opening it would block until a writer comes
    with pytest.raises(DataError, match=r"pipe\.png: not an image file: a named pipe \(FIFO\)$"):
        read_image_size(tmp_path / "pipe.png")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(DataError, match=r"folder\.jpg: not an image file: a folder$"):
        read_image_size(tmp_path / "folder.jpg")
    with pytest.raises(DataError, match=r"not an image file: a device$"):
        read_image_size("/dev/zero")
