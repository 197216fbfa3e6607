"""Fixtures shared by every test area.

Area-specific fixtures live in each area's own ``conftest.py`` (``tests/runtime/``,
``tests/data/``, ...).
"""

from __future__ import annotations

import os
import shutil

import pytest

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
