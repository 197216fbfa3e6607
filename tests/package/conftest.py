"""Fixtures of the packaging tests: tiny real models, and bundles built once per session.

The bundles use the normal wheel cache (``~/.cache/edgecnn/wheels``, or ``$EDGECNN_CACHE``):
the first session on a machine downloads the arm64 and x86_64 wheels from PyPI (about 180 MB),
later ones reuse them, as ``edgecnn package`` does for a user. Tests of the cache itself use
their own temporary caches.
"""

from __future__ import annotations

import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tinymodels

from edgecnn.package.bundle import BundleResult, package_model
from edgecnn.package.wheelhouse import Target


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An int8 YOLO-style detector with its spec embedded (built with TensorFlow)."""
    pytest.importorskip("tensorflow")
    return tinymodels.build_detector(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def flex_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model converted with SELECT_TF_OPS: it holds the custom op FlexAdjustHue."""
    pytest.importorskip("tensorflow")
    return tinymodels.build_flex_model(tmp_path_factory.mktemp("flex"))


@pytest.fixture(scope="session")
def device_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A device config reading a video file, with a model path the bundle must replace."""
    path = tmp_path_factory.mktemp("config") / "device.yaml"
    path.write_text(tinymodels.DEVICE_CONFIG)
    return path


@pytest.fixture(scope="session")
def bundles(
    tiny_detector: Path, device_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BundleResult]:
    """``{"arm64": ..., "x86_64": ...}``: bundles of the tiny detector for both targets."""
    out = tmp_path_factory.mktemp("dist")
    return {
        arch: package_model(tiny_detector, Target(arch=arch), out=out, config=device_config)
        for arch in ("arm64", "x86_64")
    }


@pytest.fixture
def unpack(tmp_path: Path) -> Callable[[Path], Path]:
    """Unpack a bundle into this test's folder; return its top directory."""

    def run(archive: Path) -> Path:
        with tarfile.open(archive) as tar:
            tops = {m.name.split("/")[0] for m in tar.getmembers()}
            tar.extractall(tmp_path, filter="data")
        assert len(tops) == 1
        return tmp_path / tops.pop()

    return run
