"""The sha256 of a file, read in 1 MiB blocks (wheels and model files can be large).

Shared by the wheelhouse, the bundle and calibration sets. The board's installer
(``edgecnn/package/install.py``) keeps its own copy: it runs on the standard library alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
