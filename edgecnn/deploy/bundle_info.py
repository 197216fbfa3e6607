"""What ``edgecnn deploy`` needs to know about a bundle archive, read on the workstation."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import UserError

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class BundleInfo:
    """A bundle archive made by ``edgecnn package``.

    Args:
        path: the ``.tar.gz``.
        sha256: hex digest of the archive (names it on the board, skips a second upload).
        size: bytes.
        name: bundle name from its manifest.
        version: release version from its manifest (``/opt/edgecnn/releases/<version>``).
        top: the archive's top directory (where ``install.py`` is).
        machine: the board CPU it is for (``uname -m``: aarch64, x86_64).
        unpacked_size: bytes of its files once unpacked (the board's staging space needs it too).
        manifest_sha256: the manifest's own digest, which an installed release keeps in its
            ``.installed`` mark ('' if the manifest has none).
    """

    path: Path
    sha256: str
    size: int
    name: str
    version: str
    top: str
    machine: str
    unpacked_size: int = 0
    manifest_sha256: str = ""


def read_bundle(path: Path) -> BundleInfo:
    """Check that ``path`` is an edgecnn bundle and read its name, version and digest.

    The installer on the board verifies every byte; this only catches a wrong file early.

    Raises:
        UserError: missing, not a gzip tar archive, or without ``TOP/manifest.json`` and
            ``TOP/install.py``.
    """
    if path.is_dir():
        raise UserError(f"{path}: is a directory; expected a bundle .tar.gz (edgecnn package MODEL.tflite)")
    if not path.is_file():
        raise UserError(f"{path}: no such bundle (make one with: edgecnn package MODEL.tflite)")
    digest = hashlib.sha256()
    # Inflate the whole stream too: listing the tar stops at its end marker, before gzip's
    # CRC, so a flipped byte inside a wheel would only show on every board, after the upload.
    inflate = zlib.decompressobj(wbits=31)
    with path.open("rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            raise UserError(f"{path}: not an edgecnn bundle (not a gzip file; expected a .tar.gz)")
        handle.seek(0)
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                if not inflate.eof:
                    inflate.decompress(block)
        except zlib.error as exc:
            raise UserError(f"{path}: damaged: invalid gzip data ({exc}); copy or make it again") from None
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
            names = [member.name for member in members]
            unpacked = sum(member.size for member in members if member.isfile())
            tops = {name.split("/", 1)[0] for name in names}
            if len(tops) != 1:
                raise UserError(f"{path}: not an edgecnn bundle (expected one top directory)")
            top = tops.pop()
            if not _SAFE_NAME.fullmatch(top):
                raise UserError(f"{path}: not an edgecnn bundle (top directory {top!r})")
            for needed in ("install.py", "manifest.json"):
                if f"{top}/{needed}" not in names:
                    raise UserError(f"{path}: not an edgecnn bundle (no {top}/{needed})")
            member = tar.extractfile(f"{top}/manifest.json")
            manifest = json.loads(member.read()) if member is not None else None
    except (tarfile.TarError, OSError, EOFError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: not an edgecnn bundle ({exc})") from None
    if not isinstance(manifest, dict) or "version" not in manifest:
        raise UserError(f"{path}: not an edgecnn bundle (its manifest has no version)")
    return BundleInfo(
        path=path,
        sha256=digest.hexdigest(),
        size=path.stat().st_size,
        name=str(manifest.get("name", top)),
        version=str(manifest["version"]),
        top=top,
        machine=str(manifest.get("target", {}).get("machine", "")),
        unpacked_size=unpacked,
        manifest_sha256=str(manifest.get("manifest_sha256", "")),
    )
