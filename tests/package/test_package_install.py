"""The bundle's installer on this (x86_64) machine: verification first, then an offline install.

The installs here go to a temporary prefix with ``--no-user --no-systemd`` (this machine is
not a board); ``tests/board`` installs the arm64 bundle for real, as root on the emulated Pi.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tinymodels

from edgecnn.package import install as installer
from edgecnn.package.bundle import BundleResult, package_model
from edgecnn.package.install import BundleError, Installer, verify_bundle
from edgecnn.package.wheelhouse import Target

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def _flip(path: Path, offset: int) -> bytes:
    data = path.read_bytes()
    damaged = bytearray(data)
    damaged[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(damaged))
    return data


def _tree(*roots: Path) -> list[str]:
    return sorted(str(p) for root in roots if root.exists() for p in [root, *root.rglob("*")])


def test_installer_keeps_to_python_39_syntax() -> None:
    source = Path(installer.__file__).read_text()
    ast.parse(source, feature_version=(3, 9))
    imported = {
        n.names[0].name.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)
    }
    imported |= {n.module.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_one_flipped_byte_in_any_file_is_refused(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path]
) -> None:
    root = unpack(bundles["x86_64"].path)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) > 25
    for path in files:
        rel = path.relative_to(root).as_posix()
        offsets = (0, path.stat().st_size // 2, -1) if rel == "manifest.json" else (path.stat().st_size // 2,)
        for offset in offsets:
            original = _flip(path, offset)
            with pytest.raises(BundleError) as err:
                verify_bundle(root)
            path.write_bytes(original)
            expected = "manifest.json: " if rel == "manifest.json" else f"{rel}: sha256 mismatch"
            assert str(err.value).startswith(expected), (rel, offset, str(err.value))
    assert verify_bundle(root)["name"] == "tiny_det"


def test_added_missing_or_linked_files_are_refused(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path]
) -> None:
    root = unpack(bundles["x86_64"].path)
    (root / "wheels" / "extra-1.0-py3-none-any.whl").write_bytes(b"PK")
    with pytest.raises(
        BundleError, match=r"wheels/extra-1\.0-py3-none-any\.whl: not listed in manifest\.json"
    ):
        verify_bundle(root)
    (root / "wheels" / "extra-1.0-py3-none-any.whl").unlink()
    readme = (root / "README.txt").read_bytes()
    (root / "README.txt").unlink()
    with pytest.raises(BundleError, match=r"README\.txt: missing from the bundle"):
        verify_bundle(root)
    (root / "elsewhere.txt").write_bytes(readme)
    (root / "README.txt").symlink_to("elsewhere.txt")
    with pytest.raises(BundleError, match=r"README\.txt: is a symlink"):
        verify_bundle(root)


def _install(root: Path, base: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        str(root / "install.py"),
        "--prefix",
        str(base / "opt"),
        "--etc",
        str(base / "etc"),
    ]
    command += ["--unit-dir", str(base / "units"), "--no-user", "--no-systemd", *options]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=base)


def test_damaged_bundle_changes_nothing(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path], tmp_path: Path
) -> None:
    root = unpack(bundles["x86_64"].path)
    wheel = next((root / "wheels").glob("numpy-*.whl"))
    _flip(wheel, 1000)
    base = tmp_path / "system"
    base.mkdir()
    result = _install(root, base)
    assert result.returncode == 1
    assert f"install.py: error: wheels/{wheel.name}: sha256 mismatch" in result.stderr
    assert _tree(base) == [str(base)]  # no prefix, no /etc/edgecnn, no unit directory


def test_bundle_for_another_cpu_is_refused(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path], tmp_path: Path
) -> None:
    root = unpack(bundles["arm64"].path)
    result = subprocess.run(
        [sys.executable, str(root / "install.py"), "--verify-only"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "this bundle is for aarch64 (arm64); this machine is x86_64" in result.stderr


def test_offline_install_lays_out_a_release(
    bundles: dict[str, BundleResult], unpack: Callable[[Path], Path], tmp_path: Path
) -> None:
    root = unpack(bundles["x86_64"].path)
    version = bundles["x86_64"].manifest["version"]
    base = tmp_path / "system"
    base.mkdir()
    result = _install(root, base)
    assert result.returncode == 0, result.stderr + result.stdout
    release = base / "opt" / "releases" / version
    assert os.readlink(base / "opt" / "current") == f"releases/{version}"
    assert (release / ".installed").read_text().strip() == bundles["x86_64"].manifest["manifest_sha256"]
    for rel in ("model.tflite", "manifest.json", "requirements.txt", "config/device.yaml"):
        assert (release / rel).read_bytes() == (root / rel).read_bytes()
    # The config may hold an MQTT password: the release's copy is root's only.
    assert (release / "config/device.yaml").stat().st_mode & 0o777 == 0o600
    # Another prefix than /opt/edgecnn: the installed config points into it.
    shipped = (root / "config/device.yaml").read_text()
    assert "/opt/edgecnn/current/model.tflite" in shipped
    installed = (base / "etc" / "device.yaml").read_text()
    assert installed == shipped.replace("/opt/edgecnn/current/", f"{base / 'opt'}/current/")
    version_out = subprocess.run(
        [str(base / "opt/current/venv/bin/edgecnn"), "--version"], capture_output=True, text=True, check=True
    )
    assert version_out.stdout.startswith("edgecnn ")
    frozen = subprocess.run(
        [str(release / "venv/bin/python"), "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ai-edge-litert==2.3.0" in frozen and "tensorflow" not in frozen
    assert "model loads in ai_edge_litert 2.3.0" in result.stdout

    again = _install(root, base)
    assert again.returncode == 0 and '"state": "already installed"' in again.stdout


def test_config_is_replaced_only_when_not_edited(tmp_path: Path) -> None:
    """Like dpkg's conffiles: ours is replaced; an edited one is kept, the new one put beside it."""
    bundle = tmp_path / "bundle"
    (bundle / "config").mkdir(parents=True)
    etc = tmp_path / "etc"
    job = Installer(
        bundle, {"version": "1"}, tmp_path / "opt", etc, tmp_path / "units", sys.executable, False, False
    )

    def ship(text: str) -> None:
        (bundle / "config/device.yaml").write_text(text)

    ship("device: a\n")
    assert job.install_config(replace=False) == "installed"
    ship("device: b\n")
    assert job.install_config(replace=False) == "installed"  # not edited: replaced
    assert (etc / "device.yaml").read_text() == "device: b\n"
    (etc / "device.yaml").write_text("device: local\n")
    ship("device: c\n")
    assert job.install_config(replace=False).startswith("kept")
    assert (etc / "device.yaml").read_text() == "device: local\n"
    assert (etc / "device.yaml.dist").read_text() == "device: c\n"
    assert job.install_config(replace=True) == "installed"
    assert (etc / "device.yaml").read_text() == "device: c\n"
    backups = list(etc.glob("device.yaml.*.bak"))
    assert [b.read_text() for b in backups] == ["device: local\n"]
    assert job.install_config(replace=False) == "unchanged"
    shutil.rmtree(bundle)


def test_tflite_runtime_bundle_installs_and_detects_like_litert(
    tiny_detector: Path, device_config: Path, unpack: Callable[[Path], Path], tmp_path: Path
) -> None:
    """``--runtime tflite-runtime``: its own pins (numpy 1.26, OpenCV 4.11) install offline, the
    daemon picks the tflite_runtime backend and detects what LiteRT detects on this machine."""
    result = package_model(
        tiny_detector, Target("x86_64", runtime="tflite-runtime"), out=tmp_path, config=device_config
    )
    assert {"tflite-runtime==2.14.0", "numpy==1.26.4", "opencv-python-headless==4.11.0.86"} <= set(
        result.manifest["wheels"]
    )
    assert not any(w.startswith("ai-edge-litert") for w in result.manifest["wheels"])
    root = unpack(result.path)
    base = tmp_path / "system"
    base.mkdir()
    installed = _install(root, base)
    assert installed.returncode == 0, installed.stderr + installed.stdout
    assert "model loads in tflite_runtime 2.14.0" in installed.stdout
    video = tinymodels.write_video(tmp_path / "video.avi")
    args = [
        "-v",  # the backend choice is a debug line
        "run",
        "--model",
        str(tiny_detector),
        "--source",
        str(video),
        "--jsonl",
        "-",
        "--max-frames",
        "12",
    ]
    runs = {
        "tflite-runtime": [str(base / "opt/current/venv/bin/edgecnn"), *args],
        "ai-edge-litert": [sys.executable, "-m", "edgecnn", *args],
    }
    detections, logs = {}, {}
    for name, command in runs.items():
        proc = subprocess.run(command, capture_output=True, text=True, check=True)
        frames = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        detections[name] = [[(d["label"], d["score"], d["box"]) for d in f["detections"]] for f in frames]
        logs[name] = proc.stderr
        assert len(frames) == 12 and sum(map(len, detections[name])) > 100, proc.stderr[-1000:]
    assert "TFLite backend: tflite_runtime 2.14.0" in logs["tflite-runtime"]
    assert "TFLite backend: ai_edge_litert" in logs["ai-edge-litert"]
    assert detections["tflite-runtime"] == detections["ai-edge-litert"]
