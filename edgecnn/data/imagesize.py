"""Image width and height from the file header, without decoding the pixels.

Reading a dataset's sizes this way costs one small read per image instead of a full
decode. PNG, JPEG (baseline and progressive), BMP, GIF and WebP (lossy, lossless and
extended) are parsed; anything else, or a header that does not parse, falls back to
decoding with OpenCV.

JPEG files with an EXIF orientation of 5..8 (rotated by 90 degrees) report the size *after*
rotation, because that is what ``cv2.imread`` returns and what training sees.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from edgecnn.errors import DataError

#: File suffixes treated as images when a folder is listed (lower case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

_HEADER_BYTES = 64 * 1024  # enough for JPEG EXIF/ICC segments before the frame header in most files


def is_image_file(path: Path) -> bool:
    """True if ``path`` has one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image_size(path: str | Path) -> tuple[int, int]:
    """Return ``(width, height)`` of an image file.

    The header is parsed when the format is known; otherwise (or if the header is
    damaged) the image is decoded with OpenCV.

    Raises:
        DataError: the file is missing or is not a readable image.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_BYTES)
            try:
                size = _size_from_header(head)
                if size is None and head[:2] == b"\xff\xd8":
                    # A JPEG whose frame header lies beyond the first read (large EXIF thumbnails).
                    size = _jpeg_size(head + f.read())
            except struct.error:  # a truncated header: let the decoder judge the file
                size = None
    except FileNotFoundError:
        raise DataError(path, "image file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read image file: {exc.strerror or exc}") from None
    if size is not None and size[0] > 0 and size[1] > 0:
        return size
    return _size_by_decoding(path)


def _size_by_decoding(path: Path) -> tuple[int, int]:
    data = np.fromfile(path, dtype=np.uint8)
    # IMREAD_COLOR applies EXIF orientation, like cv2.imread and like the header parser.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(path, "unreadable image (not a PNG/JPEG/BMP/GIF/WebP/TIFF file, or corrupt)")
    return int(image.shape[1]), int(image.shape[0])


def _size_from_header(head: bytes) -> tuple[int, int] | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return width, height
    if head[:2] == b"BM" and len(head) >= 26:
        return _bmp_size(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_size(head)
    return None


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
# Markers without a length field.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    swap = False
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            swap = _exif_orientation(segment[6:]) in (5, 6, 7, 8)
        elif marker in _SOF_MARKERS:
            if len(segment) < 5:
                return None
            height, width = struct.unpack(">HH", segment[1:5])
            return (height, width) if swap else (width, height)
        elif marker == 0xDA:  # start of scan before any frame header: not a valid JPEG
            return None
        pos += 2 + length
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
