"""Image width and height from the file header, without decoding the pixels.

Reading a dataset's sizes this way costs one small read per image instead of a full
decode. PNG, JPEG (baseline and progressive), BMP, GIF and WebP (lossy, lossless and
extended) are parsed; anything else, or a header that does not parse, falls back to
decoding with OpenCV.

JPEG files with an EXIF orientation of 5..8 (rotated by 90 degrees) report the size *after*
rotation, because that is what ``cv2.imread`` returns and what training sees (PNG ``eXIf``
and WebP ``EXIF`` chunks too: OpenCV applies them as well);
:func:`read_image_info` also gives the orientation, so that readers can tell annotations made
on the unrotated pixels. A JPEG cut short (no end-of-image marker) is an error: OpenCV would
decode it with the missing rows filled in grey. Other files whose end marker or declared
length is missing are decoded instead of trusted, and OpenCV refuses them.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

import cv2
import numpy as np

from edgecnn.data._files import path_kind
from edgecnn.errors import DataError
from edgecnn.imagefile import jpeg_segments, looks_complete

#: File suffixes treated as images when a folder is listed (lower case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

_HEADER_BYTES = 64 * 1024  # enough for JPEG EXIF/ICC segments before the frame header in most files


def is_image_file(path: Path) -> bool:
    """True if ``path`` has one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image_size(path: str | Path) -> tuple[int, int]:
    """Return ``(width, height)`` of an image file, as :func:`cv2.imread` decodes it.

    The header is parsed when the format is known; otherwise (or if the header is
    damaged) the image is decoded with OpenCV.

    Raises:
        DataError: the file is missing, is not a readable image, or is a truncated JPEG.
    """
    info = read_image_info(path)
    return info.width, info.height


class ImageInfo(NamedTuple):
    """Size of an image as decoded (EXIF orientation applied) and its EXIF orientation (1..8)."""

    width: int
    height: int
    orientation: int


def read_image_info(path: str | Path) -> ImageInfo:
    """Size and EXIF orientation of an image file; see :func:`read_image_size`.

    ``orientation`` is 1 when the file has none; 5..8 mean the stored pixels are rotated by 90
    degrees, so ``width`` and ``height`` are the stored ones swapped (JPEG, PNG and WebP carry
    EXIF; OpenCV applies it to all three).

    Raises:
        DataError: the file is missing, is not a file (a folder, a device, a named pipe), is not
            a readable image, or is a truncated JPEG (no end-of-image marker after the image
            data: a download or copy that stopped). Other formats that look cut short are
            decoded, and OpenCV refuses them.
    """
    path = Path(path)
    kind = path_kind(path)
    if kind not in ("file", "missing"):  # opening a named pipe blocks; a device may never end
        raise DataError(path, f"not an image file: a {kind}")
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_BYTES)
            try:
                found = _info_from_header(head, f)
            except struct.error:  # a truncated header: let the decoder judge the file
                found = None
            if found is not None and not looks_complete(f, head):
                if head[:2] == b"\xff\xd8":  # OpenCV would fill the missing rows with grey
                    raise DataError(path, "truncated JPEG: the file ends before the image data does")
                found = None
    except FileNotFoundError:
        raise DataError(path, "image file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read image file: {exc.strerror or exc}") from None
    if found is not None:
        width, height, orientation = found
        if width > 0 and height > 0:
            swap = orientation in (5, 6, 7, 8)
            return ImageInfo(height, width, orientation) if swap else ImageInfo(width, height, orientation)
    width, height = _size_by_decoding(path)
    return ImageInfo(width, height, 1)


def _info_from_header(head: bytes, f: BinaryIO) -> tuple[int, int, int] | None:
    """``(stored width, stored height, EXIF orientation)`` from the header, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height, _png_orientation(head)
    if head[:2] == b"\xff\xd8":
        found = _jpeg_info(head)
        if found is None:  # the frame header lies beyond the first read (large EXIF thumbnails)
            f.seek(0)
            found = _jpeg_info(f.read())
        return found
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return width, height, 1
    if head[:2] == b"BM" and len(head) >= 26:
        size = _bmp_size(head)
        return (*size, 1) if size else None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        size = _webp_size(head)
        has_exif = head[12:16] == b"VP8X" and len(head) > 20 and head[20] & 0x08
        return (*size, _webp_orientation(f) if has_exif else 1) if size else None
    return None


def _png_orientation(head: bytes) -> int:
    """EXIF orientation from a PNG ``eXIf`` chunk before the image data, else 1."""
    pos = 8
    while pos + 8 <= len(head):
        (length,) = struct.unpack(">I", head[pos : pos + 4])
        kind = head[pos + 4 : pos + 8]
        if kind == b"eXIf":
            return _exif_orientation(head[pos + 8 : pos + 8 + length]) or 1
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return 1


def _webp_orientation(f: BinaryIO) -> int:
    """EXIF orientation from an extended WebP's ``EXIF`` chunk (after the image data), else 1."""
    f.seek(12)
    for _ in range(64):  # a handful of chunks in practice; never loop on a damaged file
        chunk = f.read(8)
        if len(chunk) < 8:
            break
        kind, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind == b"EXIF":
            exif = f.read(length)
            return _exif_orientation(exif.removeprefix(b"Exif\x00\x00")) or 1
        f.seek(length + (length & 1), 1)
    return 1


def decode_image(data: np.ndarray) -> np.ndarray | None:
    """``cv2.imdecode(data, IMREAD_COLOR)`` (EXIF orientation applied, like :func:`cv2.imread`),
    None for a file it cannot decode: empty, not an image, or a damaged header that makes
    OpenCV raise instead (a size beyond its limits)."""
    if not data.size:
        return None
    try:
        return cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        return None


def _size_by_decoding(path: Path) -> tuple[int, int]:
    # IMREAD_COLOR applies EXIF orientation, like cv2.imread and like the header parser.
    data = np.fromfile(path, dtype=np.uint8)
    if not data.size:  # a download or copy that never got its bytes
        raise DataError(path, "empty file (0 bytes), not an image")
    image = decode_image(data)
    if image is None:
        raise DataError(path, "unreadable image (not a PNG/JPEG/BMP/GIF/WebP/TIFF file, or corrupt)")
    return int(image.shape[1]), int(image.shape[0])


def _bmp_size(head: bytes) -> tuple[int, int] | None:
    (dib_size,) = struct.unpack("<I", head[14:18])
    if dib_size == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        width, height = struct.unpack("<HH", head[18:22])
        return width, height
    if dib_size >= 40:
        width, height = struct.unpack("<ii", head[18:26])
        return abs(width), abs(height)  # a negative height means rows stored top-down
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
def _jpeg_info(data: bytes) -> tuple[int, int, int] | None:
    orientation = 1
    for marker, _, segment in jpeg_segments(data):
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(segment[6:]) or 1
        elif marker in _SOF_MARKERS:
            if len(segment) < 5:
                return None
            height, width = struct.unpack(">HH", segment[1:5])
            return width, height, orientation
        elif marker == 0xDA:  # start of scan before any frame header: not a valid JPEG
            return None
    return None


def _exif_orientation(tiff: bytes) -> int | None:
    """The Orientation tag (0x0112) of IFD0 in an EXIF TIFF block, if present."""
    if tiff[:2] == b"II":
        order = "<"
    elif tiff[:2] == b"MM":
        order = ">"
    else:
        return None
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:  # SHORT
                (value,) = struct.unpack(order + "H", entry[8:10])
                return value
    except struct.error:
        return None
    return None
