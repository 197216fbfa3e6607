"""The installer's rollback link, its free-space check and the modes of what may hold secrets.

Cheap (no TensorFlow, no wheels): releases are laid out by hand in a temporary prefix, with a
sealed manifest and a config, as a complete install leaves them; the installer's own code
switches between them (``--no-systemd``).
"""

from __future__ import annotations

import os
import platform
import sys
import zipfile
from pathlib import Path

import pytest

from edgecnn.package import install as installer
from edgecnn.package.bundle import _Entry, _write_tar
from edgecnn.package.install import (
    BundleError,
    check_free_space,
    main,
    release_space_needed,
    seal_manifest,
    sha256_file,
)


def _release(opt: Path, version: str) -> None:
    """A complete release: sealed manifest, config and unit copies, the complete mark."""
    root = opt / "releases" / version
    (root / "config").mkdir(parents=True)
    (root / "systemd").mkdir()
    (root / "config/device.yaml").write_text(f"device: {version}\n")
    (root / "systemd/edgecnn-detect.service").write_text("[Service]\n")
    manifest = {"format": 1, "name": "t", "version": version, "files": {}}
    (root / "manifest.json").write_bytes(seal_manifest(manifest))
    (root / ".installed").write_text("x\n")


def _switch(base: Path, *options: str) -> int:
    paths = ["--prefix", str(base / "opt"), "--etc", str(base / "etc"), "--unit-dir", str(base / "units")]
    return main([*options, *paths, "--no-systemd", "--no-user"])


def _link(opt: Path, name: str) -> str | None:
    return os.readlink(opt / name) if (opt / name).is_symlink() else None


def test_rollback_points_previous_at_the_last_good_release(tmp_path: Path) -> None:
    """v1 ran (v0 before it); v2 was deployed and failed: the rollback to v1 with ``--previous
    v0`` leaves ``previous`` at v0, so a later ``--switch-to previous`` goes to v0, not v2."""
    opt = tmp_path / "opt"
    for version in ("v0", "v1", "v2"):
        _release(opt, version)
    assert _switch(tmp_path, "--switch-to", "v0") == 0
    assert _switch(tmp_path, "--switch-to", "v1") == 0
    assert _switch(tmp_path, "--switch-to", "v2") == 0  # the deploy's switch
    assert (_link(opt, "current"), _link(opt, "previous")) == ("releases/v2", "releases/v1")
    assert _switch(tmp_path, "--switch-to", "v1", "--previous", "v0") == 0  # the rollback
    assert (_link(opt, "current"), _link(opt, "previous")) == ("releases/v1", "releases/v0")
    assert "device: v1" in (tmp_path / "etc/device.yaml").read_text()
    assert _switch(tmp_path, "--switch-to", "previous") == 0
    assert _link(opt, "current") == "releases/v0"

    # No last good release (''), or one that is gone: no previous link at all.
    assert _switch(tmp_path, "--switch-to", "v1", "--previous", "") == 0
    assert (_link(opt, "current"), _link(opt, "previous")) == ("releases/v1", None)
    assert _switch(tmp_path, "--switch-to", "v2", "--previous", "v9") == 0
    assert (_link(opt, "current"), _link(opt, "previous")) == ("releases/v2", None)
    # Without --previous a switch still names the release it replaced (two switches toggle).
    assert _switch(tmp_path, "--switch-to", "v1") == 0
    assert _link(opt, "previous") == "releases/v2"
    with pytest.raises(SystemExit):
        main(["--previous", "v0"])  # only with --switch-to


def test_a_release_that_does_not_fit_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle"
    for rel, text in {
        "model.tflite": "m" * 100,
        "config/device.yaml": "device: x\n",
        "systemd/edgecnn-detect.service": "[Service]\n",
        "requirements.txt": "pkg==1.0 --hash=sha256:00\n",
        "install.py": "",
    }.items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_text(text)
    (bundle / "wheels").mkdir()
    with zipfile.ZipFile(bundle / "wheels/pkg-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr("pkg/__init__.py", "x = 1\n" * 1000)  # 6000 bytes, and its byte code
        wheel.writestr("pkg/data.bin", b"\0" * 50_000)
    files = {p.relative_to(bundle).as_posix(): sha256_file(p) for p in bundle.rglob("*") if p.is_file()}
    target = {
        "machine": platform.machine(),
        "arch": "x",
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
    }
    manifest = {"format": 1, "name": "t", "version": "v1", "target": target, "files": files}
    (bundle / "manifest.json").write_bytes(seal_manifest(manifest))
    copies = sum(
        (bundle / rel).stat().st_size for rel in ("model.tflite", "manifest.json", "requirements.txt")
    )
    copies += len("device: x\n") + len("[Service]\n")
    assert release_space_needed(bundle) == installer.VENV_BASE_BYTES + copies + 3 * 6000 + 50_000

    stats = os.statvfs(tmp_path)
    free = stats.f_bavail * stats.f_frsize
    check_free_space(tmp_path / "opt/not/yet", 1)
    with pytest.raises(BundleError) as caught:
        check_free_space(tmp_path / "opt/not/yet", free + 10**12)
    assert str(caught.value).startswith(f"not enough space in {tmp_path / 'opt/not/yet'}: ")
    assert "MB free, the new release needs about " in str(caught.value)

    # Through the installer: refused before the release directory is made.
    monkeypatch.setattr(installer, "VENV_BASE_BYTES", free + 10**12)
    with pytest.raises(BundleError, match=r"^not enough space in .*/opt: \d+ MB free, the new release needs"):
        installer.install(bundle, prefix=tmp_path / "opt", manage_user=False, systemd=False, switch=False)
    assert not (tmp_path / "opt/releases/v1").exists()


def test_bundle_archive_and_config_record_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle holds the device config (an MQTT password): 0600 whatever the umask, also when
    it replaces an older, world-readable file; so is the board's record of the config's sha256."""
    out = tmp_path / "b.tar.gz"
    out.write_bytes(b"old")
    os.chmod(out, 0o644)
    old_umask = os.umask(0o022)
    try:
        _write_tar(out, "top", [_Entry("config/device.yaml", b"password: hunter2\n")])
    finally:
        os.umask(old_umask)
    assert out.stat().st_mode & 0o777 == 0o600

    job = installer.Installer(
        tmp_path / "bundle", {"version": "1"}, tmp_path / "opt", tmp_path / "etc", tmp_path / "u",
        sys.executable, False, False,
    )  # fmt: skip
    monkeypatch.setattr(installer.os, "chown", lambda *args: None)
    monkeypatch.setattr(job, "_run", lambda command, what: f"edgecnn:x:{os.getgid()}:\n")
    (tmp_path / "bundle/config").mkdir(parents=True)
    (tmp_path / "bundle/config/device.yaml").write_text("password: hunter2\n")
    record = tmp_path / "etc/.device.yaml.installed-sha256"
    for expected in ("installed", "unchanged"):
        assert job.install_config(replace=False) == expected
        assert record.stat().st_mode & 0o777 == 0o600
    assert record.read_text() == sha256_file(tmp_path / "etc/device.yaml") + "\n"
    assert not list((tmp_path / "etc").glob(".*.tmp"))
