"""Telling a whole image file from one cut short, from its bytes (standard library only).

Shared by the datasets (a truncated JPEG is a bad entry) and the board's folder sources (a
camera uploading snapshots over FTP may leave one cut off): OpenCV decodes a JPEG that stops
early without complaint, filling the missing rows with grey, so the check has to come first.
Other formats cut short are refused by the decoder itself; their end markers or declared
lengths are checked here too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

# Markers without a length field.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})


def looks_complete(f: BinaryIO, head: bytes) -> bool:
    """A cheap check that the file ``f`` (seekable, opened in binary) was not cut short: its end
    marker or declared length. ``head`` is its first bytes (at least 12); the file position
    is left anywhere."""
    length = f.seek(0, 2)

    def tail(n: int) -> bytes:
        f.seek(max(0, length - n))
        return f.read(n)

    if head[:2] == b"\xff\xd8":
        return not _jpeg_truncated(f, tail(2))
    if head[:4] == b"\x89PNG":
        return tail(12) == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    if head[:3] == b"GIF":
        return tail(1) == b";"
    if head[:2] == b"BM" and len(head) >= 6:
        (declared,) = struct.unpack("<I", head[2:6])
        return length >= declared
    if head[:4] == b"RIFF" and len(head) >= 8:
        (declared,) = struct.unpack("<I", head[4:8])
        return length >= declared + 8
    return True


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(marker, offset, payload)`` of each marker segment of a JPEG up to and including the
    first start-of-scan; stops early on bytes that are not a marker."""
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield marker, pos, data[pos + 4 : pos + 2 + length]
        if marker == 0xDA:
            return
        pos += 2 + length


def _jpeg_truncated(f: BinaryIO, last_two: bytes) -> bool:
    """True if a JPEG has no end-of-image marker after its first scan.

    The last two bytes being ``FF D9`` is the quick answer. Files with data appended after the
    image (phones do this) are told from cut-off files by looking for the marker after the
    first start-of-scan; entropy-coded data cannot contain it, an EXIF thumbnail's comes before.
    """
    if last_two == b"\xff\xd9":
        return False
    f.seek(0)
    data = f.read()
    scan = next((pos for marker, pos, _ in jpeg_segments(data) if marker == 0xDA), None)
    return scan is None or data.find(b"\xff\xd9", scan) < 0
