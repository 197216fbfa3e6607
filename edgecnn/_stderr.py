"""Capture what C++ code writes to file descriptor 2, and drop lines known to be noise.

TensorFlow and its TFLite converter print from C++ straight to fd 2 (``sys.stderr`` and
logging never see it), so the only way to keep their notices from users is to point fd 2
at a temporary file for the duration and write back, afterwards, every line that is not
a known notice: a real error still reaches the user.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator


def drop_lines(text: str, noise: re.Pattern[str]) -> str:
    """``text`` without the lines ``noise`` matches (searched, not anchored)."""
    return "".join(line for line in text.splitlines(keepends=True) if not noise.search(line))


@contextlib.contextmanager
def captured_stderr_fd(noise: re.Pattern[str]) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block, then write back the lines
    ``noise`` does not match."""
    import tempfile  # here, not at the top: ``edgecnn run`` on a board imports this module too

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = drop_lines(capture.read().decode("utf-8", "replace"), noise)
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
