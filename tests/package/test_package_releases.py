"""The installer's release management on this machine: a second release reuses the first one's
packages (checked against their RECORD), ``--list``, ``--switch-to`` (rollback) and ``--prune``.

Like ``test_package_install.py`` these install the x86_64 bundle into a temporary prefix with
``--no-user --no-systemd``; ``tests/board/test_deploy.py`` drives the same options on the
emulated Pi through ``edgecnn deploy``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import tinymodels

from edgecnn.package.bundle import BundleResult, package_model
from edgecnn.package.install import BundleError, verify_site_packages
from edgecnn.package.wheelhouse import Target

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def _installer(root: Path, base: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(root / "install.py"), "--prefix", str(base / "opt"), "--etc"]
    command += [str(base / "etc"), "--unit-dir", str(base / "units"), "--no-user", "--no-systemd", *options]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=base)


def _summary(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout.split("install.py: ")[-1])


def edgecnn_wheel_of(bundle: BundleResult, folder: Path) -> Path:
    """The edgecnn wheel inside a bundle, extracted to ``folder`` (to package another bundle with
    the same pins even if the source tree changes meanwhile)."""
    with tarfile.open(bundle.path) as tar:
        member = next(m for m in tar.getmembers() if "/wheels/edgecnn-" in m.name)
        tar.extract(member, folder, filter="data")
    return folder / member.name


@pytest.fixture(scope="module")
def second_bundle(
    bundles: dict[str, BundleResult], tiny_detector: Path, tmp_path_factory: pytest.TempPathFactory
) -> BundleResult:
    """The same model and wheels with another device config: another version."""
    folder = tmp_path_factory.mktemp("second")
    config = folder / "device.yaml"
    config.write_text(tinymodels.DEVICE_CONFIG.replace("device: test-board", "device: other-board"))
    wheel = edgecnn_wheel_of(bundles["x86_64"], folder)
    return package_model(
        tiny_detector, Target("x86_64"), out=folder / "dist", config=config, edgecnn_wheel=wheel
    )


def test_releases_reuse_switch_list_and_prune(
    bundles: dict[str, BundleResult],
    second_bundle: BundleResult,
    unpack: Callable[[Path], Path],
    tmp_path: Path,
) -> None:
    first, second = bundles["x86_64"], second_bundle
    v1, v2 = first.manifest["version"], second.manifest["version"]
    assert v1 != v2
    root1, root2 = unpack(first.path), unpack(second.path)
    assert (root1 / "requirements.txt").read_bytes() == (root2 / "requirements.txt").read_bytes()
    base = tmp_path / "system"
    base.mkdir()
    opt = base / "opt"

    assert _summary(_installer(root1, base))["venv_from"] is None
    summary = _summary(_installer(root2, base))
    # The second release's venv is a checked copy of the first one's packages, not a reinstall.
    assert summary["venv_from"] == v1 and summary["state"] == "installed"
    assert os.readlink(opt / "current") == f"releases/{v2}"
    assert os.readlink(opt / "previous") == f"releases/{v1}"
    venv2 = opt / "releases" / v2 / "venv"
    script = (venv2 / "bin/edgecnn").read_text()
    assert script.startswith(f"#!{venv2}/bin/python") and f"releases/{v1}" not in script
    ran = subprocess.run(
        [str(venv2 / "bin/edgecnn"), "--version"], capture_output=True, text=True, check=True
    )
    assert ran.stdout.startswith("edgecnn ")
    assert "other-board" in (base / "etc/device.yaml").read_text()

    listed = json.loads(_installer(root1, base, "--list").stdout)
    assert [(r["version"], r["complete"], r["current"], r["previous"]) for r in listed] == [
        (v1, True, False, True),
        (v2, True, True, False),
    ]

    # Rollback: the previous release is current again, with its own config.
    switched = _summary(_installer(root2, base, "--switch-to", "previous"))
    assert switched["version"] == v1 and switched["state"] == "switched"
    assert os.readlink(opt / "current") == f"releases/{v1}"
    assert os.readlink(opt / "previous") == f"releases/{v2}"
    assert "test-board" in (base / "etc/device.yaml").read_text()
    missing = _installer(root2, base, "--switch-to", "no-such-version")
    assert missing.returncode == 1 and "not a complete release" in missing.stderr
    assert os.readlink(opt / "current") == f"releases/{v1}"

    # Pruning keeps the current and the previous release whatever N is; failed attempts go.
    (opt / "releases" / "0.0.1-old").mkdir()
    pruned = _summary(_installer(root1, base, "--prune", "--keep", "1"))
    assert pruned["removed"] == ["0.0.1-old"]
    assert sorted(p.name for p in (opt / "releases").iterdir()) == sorted([v1, v2])
    refused = _installer(root1, base, "--prune")
    assert refused.returncode == 2 and "--prune needs --keep N" in refused.stderr


def test_copied_packages_that_differ_from_record_are_refused(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path], tmp_path: Path
) -> None:
    """verify_site_packages: a changed byte, an unlisted file and a missing pin are each found."""
    root = unpack(bundles["x86_64"].path)
    base = tmp_path / "system"
    base.mkdir()
    _summary(_installer(root, base))
    site = next((base / "opt/current/venv/lib").glob("python3*/site-packages"))
    requirements = (root / "requirements.txt").read_text()
    assert verify_site_packages(site, requirements) > 100

    target = site / "edgecnn" / "errors.py"
    original = target.read_bytes()
    target.write_bytes(original + b"\n")
    with pytest.raises(BundleError, match="differs from its package's RECORD"):
        verify_site_packages(site, requirements)
    target.write_bytes(original)
    (site / "edgecnn" / "extra.py").write_text("x = 1\n")
    with pytest.raises(BundleError, match="not listed in any package's RECORD"):
        verify_site_packages(site, requirements)
    (site / "edgecnn" / "extra.py").unlink()
    with pytest.raises(BundleError, match="is not installed there"):
        verify_site_packages(site, requirements + "left-pad==1.0 --hash=sha256:00\n")
