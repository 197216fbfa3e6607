"""``manifest.json``: what a bundle is, what it is for, and the sha256 of every file in it.

The manifest is written in one canonical byte form (sorted keys, indent 2, ASCII) and carries
the sha256 of that form with its own ``manifest_sha256`` field empty; the board's installer
(:mod:`edgecnn.package.install`, which defines the format) refuses a manifest that is not
byte-for-byte canonical or whose digest does not match, then checks every other file against
``files``. Together: one flipped byte anywhere in a bundle stops the installation. This is an
integrity check (a damaged copy, a truncated download), not a signature.

Fields: ``format``, ``name``, ``version``, ``created`` (UTC, ISO 8601), ``edgecnn_version``,
``target`` (``arch``, ``machine``, ``python``, ``runtime``, ``runtime_version``, ``glibc``,
``platforms``), ``model`` (``path``, ``sha256``, ``size``, ``spec``, ``input``, ``outputs``,
``ops``), ``install`` (where things go on the board), ``wheels`` (``name==version`` each),
``files`` (relative path -> sha256, every file but the manifest) and ``manifest_sha256``.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import edgecnn
from edgecnn.errors import UserError
from edgecnn.package.install import (
    CONFIG,
    FORMAT_VERSION,
    MANIFEST,
    MODEL,
    UNIT,
    BundleError,
    read_manifest,
    seal_manifest,
)
from edgecnn.package.ops import OpUse
from edgecnn.package.wheelhouse import Target, Wheel
from edgecnn.runtime.flatbuffer import TensorDesc, TFLiteFile
from edgecnn.runtime.spec import ModelSpec

#: Where the installer puts things on the board (``install.py`` defaults).
INSTALL_PREFIX = "/opt/edgecnn"
BOARD_MODEL_PATH = f"{INSTALL_PREFIX}/current/{MODEL}"
BOARD_CONFIG_PATH = "/etc/edgecnn/device.yaml"


def tensor_summary(tensor: TensorDesc) -> dict[str, Any]:
    """Name, shape, dtype and (per-tensor) quantisation of a tensor."""
    summary: dict[str, Any] = {"name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype}
    if len(tensor.scales) == 1:
        summary["scale"] = tensor.scales[0]
        summary["zero_point"] = tensor.zero_points[0] if tensor.zero_points else 0
    return summary


def model_summary(
    parsed: TFLiteFile, spec: ModelSpec, ops: list[OpUse], sha256: str, size: int
) -> dict[str, Any]:
    """The manifest's ``model`` entry: file, spec, input and output tensors, operators."""
    main = parsed.main
    return {
        "path": MODEL,
        "sha256": sha256,
        "size": size,
        "spec": spec.model_dump(mode="json"),
        "input": {**spec.input.model_dump(mode="json"), "tensor": tensor_summary(main.input_tensors[0])},
        "outputs": [tensor_summary(t) for t in main.output_tensors],
        "ops": [
            {"name": op.name, "builtin_code": op.builtin_code, "version": op.version, "count": op.count}
            for op in ops
        ],
    }


def build_manifest(
    name: str,
    version: str,
    created: str,
    target: Target,
    model: dict[str, Any],
    wheels: list[Wheel],
    files: dict[str, str],
) -> bytes:
    """The sealed ``manifest.json`` bytes.

    Args:
        name: bundle name.
        version: bundle (release) version.
        created: creation time, ISO 8601 UTC.
        target: the board.
        model: :func:`model_summary`.
        wheels: every wheel in ``wheels/``.
        files: relative path -> sha256 of every bundle file except the manifest.
    """
    release = target.release
    document = {
        "format": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created": created,
        "edgecnn_version": edgecnn.__version__,
        "target": {
            "arch": target.arch,
            "machine": target.machine,
            "python": target.python,
            "runtime": release.name,
            "runtime_version": release.version,
            "glibc": f"{target.glibc[0]}.{target.glibc[1]}",
            "platforms": target.platforms(),
        },
        "model": model,
        "install": {
            "prefix": INSTALL_PREFIX,
            "release": f"{INSTALL_PREFIX}/releases/{version}",
            "current": f"{INSTALL_PREFIX}/current",
            "model": BOARD_MODEL_PATH,
            "config": BOARD_CONFIG_PATH,
            "config_source": CONFIG,
            "unit": f"/etc/systemd/system/{Path(UNIT).name}",
            "user": "edgecnn",
            "groups": ["edgecnn", "video"],
        },
        "wheels": sorted(f"{w.name}=={w.version}" for w in wheels),
        "files": dict(sorted(files.items())),
    }
    return seal_manifest(document)


def read_bundle_manifest(path: str | Path) -> dict[str, Any]:
    """The verified manifest of a bundle: a ``.tar.gz`` or an unpacked directory.

    Only the manifest's own integrity is checked here; :func:`edgecnn.package.install.verify_bundle`
    checks the files (on an unpacked bundle).

    Raises:
        UserError: not a bundle, or its manifest is damaged.
    """
    p = Path(path)
    try:
        if p.is_dir():
            return read_manifest(p)
        with tarfile.open(p, "r:gz") as tar:
            member = next(
                (m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith(MANIFEST)), None
            )
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise UserError(f"{p}: no {MANIFEST} at the top of the archive; not an edgecnn bundle")
            raw = handle.read()
    except (OSError, tarfile.TarError) as exc:
        raise UserError(f"{p}: cannot read the bundle: {exc}") from None
    except BundleError as exc:
        raise UserError(f"{p}: {exc}") from None
    try:
        document = json.loads(raw)
        if seal_manifest({k: v for k, v in document.items() if k != "manifest_sha256"}) != raw:
            raise ValueError("digest mismatch")
    except (ValueError, AttributeError) as exc:
        raise UserError(f"{p}: {MANIFEST} is damaged ({exc})") from None
    return document
