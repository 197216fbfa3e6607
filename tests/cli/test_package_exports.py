"""Every name a package exports stays that name after its submodules are imported.

A lazily exported function named like its own module (``edgecnn.evaluation.evaluate`` the
function in ``evaluate.py``) is shadowed once anything imports the module: Python sets the
package attribute to the submodule, and ``from edgecnn.evaluation import evaluate`` then
returns the module. This imports every submodule first, then checks each export.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import edgecnn

PACKAGES = sorted(m.name for m in pkgutil.walk_packages(edgecnn.__path__, "edgecnn.") if m.ispkg)
OPTIONAL = ("paho", "picamera2", "libcamera")  # board or extra dependencies missing here


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_survive_submodule_imports(name: str) -> None:
    package = importlib.import_module(name)
    for info in pkgutil.iter_modules(package.__path__):
        try:
            importlib.import_module(f"{name}.{info.name}")
        except ImportError as exc:
            if not (exc.name or "").startswith(OPTIONAL):
                raise
    exported = getattr(package, "__all__", [])
    shadowed = [n for n in exported if isinstance(getattr(package, n), types.ModuleType)]
    assert not shadowed, f"{name}: {shadowed} resolve to submodules, not the exported objects"
