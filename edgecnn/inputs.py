"""Reading a small input file (a config, a hosts list, a predictions file) safely.

A path given for such a file may be a named pipe (reading blocks until something writes to
it), a device such as ``/dev/zero`` (reading never ends and fills memory) or a huge file
given by mistake. :func:`read_text_input` reads only regular files up to a size limit, as
UTF-8, and turns every problem into one :class:`~edgecnn.errors.UserError` line.
"""

from __future__ import annotations

import stat
from pathlib import Path

from edgecnn.errors import UserError

#: The largest input file read this way (a COCO results file of a big val set fits).
MAX_INPUT_BYTES = 512 << 20


def read_text_input(path: str | Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The text of the regular file ``path`` (``what`` names it in messages, e.g. ``--config``).

    Raises:
        UserError: missing, not a regular file, larger than ``max_bytes``, unreadable or not UTF-8.
    """
    p = Path(path)
    try:
        info = p.stat()
    except (OSError, ValueError):
        raise UserError(f"{what} {p}: no such file") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{what} {p}: is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{what} {p}: not a regular file (a pipe or a device); expected a file")
    if info.st_size > max_bytes:
        raise UserError(f"{what} {p}: {info.st_size} bytes; more than the {max_bytes >> 20} MiB expected")
    try:
        return p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{what} {p}: cannot read: {exc.strerror or exc}") from None
