"""Fixtures of the deploy tests that need no board: a small archive shaped like a bundle."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest


def write_archive(path: Path, files: dict[str, bytes]) -> Path:
    """A .tar.gz holding ``files`` (relative path -> content)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_bundle(tmp_path: Path) -> Path:
    """An archive with the layout of a bundle (top directory, install.py, manifest.json)."""
    manifest = {"name": "tiny", "version": "0.1.0-abc", "target": {"machine": "aarch64"}}
    top = "tiny-0.1.0-abc-arm64"
    return write_archive(
        tmp_path / f"{top}.tar.gz",
        {f"{top}/install.py": b"print('hi')\n", f"{top}/manifest.json": json.dumps(manifest).encode()},
    )
