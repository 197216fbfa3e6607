"""Workstation side: package a model into an offline, hash-pinned installation bundle for a board.

* :mod:`~edgecnn.package.bundle`: :func:`package_model`, the ``.tar.gz`` (``edgecnn package``).
* :mod:`~edgecnn.package.wheelhouse`: the board's wheels, downloaded for its CPU and Python, cached.
* :mod:`~edgecnn.package.ops`: every operator of the model available in the target runtime?
* :mod:`~edgecnn.package.manifest`: ``manifest.json``.
* :mod:`~edgecnn.package.install`: the installer shipped in every bundle (standard library only).
* :mod:`~edgecnn.package.opsprobe`: measures the operator table of a runtime release.

See ``docs/packaging.md``. The public names below are imported on first use (PEP 562).
"""

from __future__ import annotations

from edgecnn._lazy import lazy_exports

_EXPORTS = {
    "BundleResult": "edgecnn.package.bundle",
    "package_model": "edgecnn.package.bundle",
    "BundleError": "edgecnn.package.install",
    "verify_bundle": "edgecnn.package.install",
    "read_bundle_manifest": "edgecnn.package.manifest",
    "OpUse": "edgecnn.package.ops",
    "UnsupportedOpError": "edgecnn.package.ops",
    "check_model_ops": "edgecnn.package.ops",
    "model_ops": "edgecnn.package.ops",
    "PROFILES": "edgecnn.package.wheelhouse",
    "Target": "edgecnn.package.wheelhouse",
    "build_edgecnn_wheel": "edgecnn.package.wheelhouse",
    "fetch_wheels": "edgecnn.package.wheelhouse",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
