"""What a path named by a dataset is, asked without opening it.

A split path, a label file or an image may be a folder, a named pipe or a device instead of
a file: opening a named pipe blocks until something writes to it, and reading a device such
as ``/dev/zero`` never ends. Readers ask :func:`path_kind` first and report anything but the
kind they expect. A name the system refuses (too long, a NUL byte) is ``missing``, as it
cannot exist; ``Path.is_file`` raises for some of those instead.
"""

from __future__ import annotations

import stat
from pathlib import Path
from unicodedata import normalize


def path_kind(path: str | Path) -> str:
    """``file``, ``folder`` or ``missing``; else ``named pipe (FIFO)``, ``device``, ``socket`` or
    ``special file`` (symlinks are followed, so a broken one is ``missing``)."""
    try:
        mode = Path(path).stat().st_mode
    except (OSError, ValueError):
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "socket" if stat.S_ISSOCK(mode) else "special file"


def unicode_forms(name: str) -> list[str]:
    """``name`` as written, then in Unicode's composed and decomposed forms, each once.

    A file name typed on macOS is stored decomposed (``e`` + combining accent) and most
    annotation tools write it composed, so a name from a label file may differ from the name
    on disk in its bytes only.
    """
    return list(dict.fromkeys((name, normalize("NFC", name), normalize("NFD", name))))
