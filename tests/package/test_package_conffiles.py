"""The installer's handling of the device config's copies, and of a failed command's message.

The device config can hold an MQTT password, so every copy the installer writes of it
(``device.yaml``, ``device.yaml.dist``, the ``.bak`` of an edited one, the release's copy) is
readable by root and the service's group only. Runs without root: ``chown`` is stubbed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edgecnn.package import install as installer
from edgecnn.package.install import BundleError, Installer


def _job(tmp_path: Path) -> Installer:
    return Installer(
        tmp_path / "bundle",
        {"version": "1"},
        tmp_path / "opt",
        tmp_path / "etc",
        tmp_path / "units",
        sys.executable,
        False,
        False,
    )


def test_every_copy_of_the_config_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer.os, "chown", lambda *args: None)  # root:edgecnn on a board
    job = _job(tmp_path)
    monkeypatch.setattr(job, "_run", lambda command, what: f"edgecnn:x:{os.getgid()}:\n")
    (tmp_path / "bundle/config").mkdir(parents=True)
    secret = "sinks:\n  - {type: mqtt, username: u, password: hunter2}\n"
    (tmp_path / "bundle/config/device.yaml").write_text(secret)
    etc = tmp_path / "etc"
    assert job.install_config(replace=False) == "installed"
    (etc / "device.yaml").write_text(secret + "# edited here\n")  # the owner's edit keeps its mode
    (tmp_path / "bundle/config/device.yaml").write_text(secret + "device: new\n")
    assert job.install_config(replace=False).startswith("kept")
    assert job.install_config(replace=True) == "installed"
    copies = [etc / "device.yaml", etc / "device.yaml.dist", *etc.glob("device.yaml.*.bak")]
    assert len(copies) == 3
    for path in copies:
        assert path.stat().st_mode & 0o777 == 0o640, path
    assert not list(etc.glob(".*.tmp"))


def test_a_failed_command_is_reported_by_its_error_not_its_progress(tmp_path: Path) -> None:
    """pip prints what it installs on stdout and its error on stderr: the reason must be the error."""
    script = (
        "import sys\n"
        "for i in range(5): print(f'Processing ./wheels/pkg{i}-1.0-py3-none-any.whl')\n"
        "print('ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device',"
        " file=sys.stderr)\n"
        "print('Installing collected packages: pkg0, pkg1')\n"
        "sys.exit(1)\n"
    )
    with pytest.raises(BundleError) as caught:
        _job(tmp_path)._run([sys.executable, "-c", script], "pip install")
    assert str(caught.value) == (
        "pip install failed: ERROR: Could not install packages due to an OSError: [Errno 28] "
        "No space left on device"
    )
    with pytest.raises(BundleError, match="failed: only on stdout"):
        _job(tmp_path)._run([sys.executable, "-c", "print('only on stdout'); raise SystemExit(3)"], "x")
