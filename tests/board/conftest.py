"""The emulated Raspberry Pi for the board tests: built once, booted once per session.

The root filesystem (arm64 Debian Bookworm, run by qemu-user-static, booted by
systemd-nspawn) is cached outside the repository by ``deploy/testbed/build.sh``; on a machine
without it the first session builds it (several minutes, see docs/packaging.md). Needs root
and the tools ``scripts/ensure-tools.sh`` installs: a missing one fails under CI and skips
elsewhere. The board's sshd listens on ``$EDGECNN_TESTBED_ADDR`` (default 127.0.0.2), port
``$EDGECNN_TESTBED_PORT`` (default 2422); ``$EDGECNN_TESTBED_NAME`` names its instance (default
pytest-package), so that two people's sessions on one machine can keep apart.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "testbed"))
sys.path.insert(0, str(ROOT / "tests" / "package"))
import tinymodels  # noqa: E402
from board import Board, build, root_stamp  # noqa: E402

from edgecnn.package.bundle import BundleResult, package_model  # noqa: E402
from edgecnn.package.wheelhouse import Target  # noqa: E402

BOARD_NAME = os.environ.get("EDGECNN_TESTBED_NAME", "pytest-package")
BOARD_ADDR = os.environ.get("EDGECNN_TESTBED_ADDR", "127.0.0.2")
BOARD_PORT = int(os.environ.get("EDGECNN_TESTBED_PORT", "2422"))


def _load_root_conftest() -> Any:
    # area conftests (no __init__.py) all import as "conftest"; load the root one by path
    spec = importlib.util.spec_from_file_location(
        "edgecnn_tests_root_conftest", ROOT / "tests" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_root = _load_root_conftest()
require_tool = _root.require_tool


@pytest.fixture(scope="session")
def measurements(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Timings and numbers of the board tests, printed at the end of the session (``-s``)."""
    found: dict[str, Any] = {}
    yield found
    if found:
        print("\nboard measurements: " + json.dumps(found, indent=2, sort_keys=True))


@pytest.fixture(scope="session")
def testbed(measurements: dict[str, Any]) -> dict[str, str]:
    """The cached root filesystem, built now if missing; returns its stamp."""
    for tool in ("qemu-aarch64-static", "debootstrap", "systemd-nspawn", "nsenter", "ssh", "ssh-keygen"):
        require_tool(tool)
    if os.geteuid() != 0:
        message = "the emulated board needs root (mounts, binfmt_misc, systemd-nspawn)"
        if _root.IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    cached = root_stamp() is not None
    seconds = build()
    stamp = root_stamp()
    assert stamp is not None
    measurements["testbed_build_seconds"] = float(stamp["build_seconds"])
    measurements["testbed_built_this_session"] = not cached
    measurements["testbed_check_seconds" if cached else "testbed_build_call_seconds"] = round(seconds, 1)
    return stamp


@pytest.fixture(scope="session")
def pi(testbed: dict[str, str], measurements: dict[str, Any]) -> Board:
    """A fresh instance of the emulated board, booted (systemd and sshd up); thrown away after."""
    board = Board(name=BOARD_NAME, addr=BOARD_ADDR, port=BOARD_PORT, fresh=True)
    measurements["boot_seconds"] = round(board.boot(), 1)
    yield board
    board.stop(discard=True)


@pytest.fixture(scope="session")
def board_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny detectors (designed and random), a device config and a short MJPG video."""
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("board_files")
    config = folder / "device.yaml"
    config.write_text(tinymodels.DEVICE_CONFIG)
    return {
        "model": tinymodels.build_detector(folder),
        "random_model": tinymodels.build_random_detector(folder),
        "config": config,
        "video": tinymodels.write_video(folder / "video.avi"),
    }


@pytest.fixture(scope="session")
def arm64_bundle(
    board_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, measurements: dict[str, Any]
) -> BundleResult:
    """The arm64 bundle of the tiny detector (wheels from the normal cache)."""
    started = time.perf_counter()
    result = package_model(
        board_files["model"],
        Target("arm64"),
        out=tmp_path_factory.mktemp("dist"),
        config=board_files["config"],
    )
    measurements["package_seconds"] = round(time.perf_counter() - started, 1)
    measurements["package_steps_seconds"] = result.seconds
    measurements["bundle_bytes"] = result.size
    measurements["wheels_from_cache"] = result.wheels_from_cache
    return result
