"""What ``edgecnn deploy`` needs to know about a bundle archive, read on the workstation."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import UserError
from edgecnn.package import install as installer

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
        release_size: about the bytes its release takes under ``/opt/edgecnn`` once
            installed (the installer's own estimate; 0: unknown).
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
    release_size: int = 0


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
            files = _read_members(tar)
    except (tarfile.TarError, OSError, EOFError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: not an edgecnn bundle ({exc})") from None
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) != 1:
        raise UserError(f"{path}: not an edgecnn bundle (expected one top directory)")
    top = tops.pop()
    if not _SAFE_NAME.fullmatch(top):
        raise UserError(f"{path}: not an edgecnn bundle (top directory {top!r})")
    for needed in ("install.py", "manifest.json"):
        if f"{top}/{needed}" not in files:
            raise UserError(f"{path}: not an edgecnn bundle (no {top}/{needed})")
    try:
        manifest = json.loads(files[f"{top}/manifest.json"].content or b"")
    except ValueError as exc:
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
        unpacked_size=sum(f.size for f in files.values()),
        manifest_sha256=str(manifest.get("manifest_sha256", "")),
        release_size=installer.VENV_BASE_BYTES
        + sum(files[f"{top}/{rel}"].size for rel in installer.RELEASE_COPIES if f"{top}/{rel}" in files)
        + sum(f.installed for name, f in files.items() if name.startswith(f"{top}/{installer.WHEELS}/")),
    )


@dataclass(frozen=True)
class _Member:
    size: int
    installed: int = 0  # a wheel's installed size, the installer's estimate
    content: bytes | None = None  # the manifest's


def _read_members(tar: tarfile.TarFile) -> dict[str, _Member]:
    """The archive's files, read in one pass (going back in a gzip stream inflates it again)."""
    files = {}
    for member in tar:
        if not member.isfile():
            continue
        name = member.name
        if name.endswith(".whl"):
            data = _read(tar, member)
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as wheel:
                    installed = installer.wheel_installed_bytes(wheel)
            except zipfile.BadZipFile:
                installed = member.size  # the installer will say what is wrong with it
            files[name] = _Member(member.size, installed)
        elif name.count("/") == 1 and name.endswith("/manifest.json"):
            files[name] = _Member(member.size, content=_read(tar, member))
        else:
            files[name] = _Member(member.size)
    return files


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    return handle.read() if handle is not None else b""
