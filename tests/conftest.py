"""Fixtures shared by every test area.

Area-specific fixtures live in each area's own ``conftest.py`` (``tests/runtime/``,
``tests/data/``, ...). Helper modules that several areas use sit next to this file and are
imported by name (their names clash with no area's): ``ultralytics_exports``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # (pytest's default import mode already puts it there)
    sys.path.insert(0, str(TESTS))

IN_CI = os.environ.get("CI") == "true"


def require_tool(command: str) -> str:
    """Return the path of a system tool a test needs.

    ``make test`` installs missing tools (scripts/ensure-tools.sh). If one is still
    missing, the test fails under CI (``CI=true``) and is skipped elsewhere, so that a
    missing install step can never pass CI silently.
    """
    path = shutil.which(command)
    if path:
        return path
    message = f"{command} not installed (scripts/ensure-tools.sh installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ultralytics_models(request: pytest.FixtureRequest) -> dict[str, Path]:
    """Tiny stand-ins for Ultralytics YOLO TFLite exports (``tests/ultralytics_exports.py``),
    name -> path: built with TensorFlow on first use, then taken from pytest's cache."""
    import ultralytics_exports

    return ultralytics_exports.cached_exports(request.config.cache)
