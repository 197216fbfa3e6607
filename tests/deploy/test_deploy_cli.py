"""``edgecnn deploy`` argument errors: one line on stderr, exit 2, before anything connects."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.deploy.bundle_info import read_bundle
from edgecnn.package.install import VENV_BASE_BYTES, release_space_needed

runner = CliRunner()


def _deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgecnn", "deploy", *args], capture_output=True, text=True, check=False
    )


def test_missing_bundle_and_bad_host_exit_2_in_one_line(tmp_path: Path, fake_bundle: Path) -> None:
    cases = [
        ([str(tmp_path / "nope.tar.gz"), "pi@board"], "nope.tar.gz: no such bundle"),
        ([str(fake_bundle), "pi@board:99999"], "port '99999' is not a number from 1 to 65535"),
        ([str(fake_bundle), "pi@-oProxyCommand=sh"], "is not a valid host name or address"),
        ([str(fake_bundle)], "no host to deploy to"),
        ([str(fake_bundle), "--hosts", str(tmp_path / "missing.txt")], "--hosts"),
        ([str(fake_bundle), "pi@board", "--identity", str(tmp_path / "no-key")], "--identity"),
        ([str(tmp_path), "pi@board"], "is a directory; expected a bundle .tar.gz"),
        (
            [str(fake_bundle), "pi@board", "--known-hosts", str(tmp_path / "no-known-hosts")],
            "no-known-hosts: no such file (every host key would be unknown",
        ),
    ]
    for args, message in cases:
        result = _deploy(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("edgecnn: error: ") and result.stdout == ""


def test_not_a_bundle_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar file")
    result = runner.invoke(app, ["deploy", str(junk), "pi@board"])
    assert result.exit_code == 2 and "not an edgecnn bundle" in result.output
    tar = tmp_path / "other.tar.gz"
    with tarfile.open(tar, "w:gz") as archive:
        info = tarfile.TarInfo("thing/install.py")
        archive.addfile(info, io.BytesIO(b""))
    result = runner.invoke(app, ["deploy", str(tar), "pi@board"])
    assert result.exit_code == 2 and "not an edgecnn bundle (no thing/manifest.json)" in result.stderr


def test_damaged_bundle_is_refused_before_any_upload(tmp_path: Path, fake_bundle: Path) -> None:
    """One flipped byte inside a member: the tar listing still reads (it stops at the end marker,
    before gzip's CRC), so only inflating everything catches it, here and not on every board."""
    good = tmp_path / "good.tar.gz"
    with tarfile.open(fake_bundle) as tar, tarfile.open(good, "w:gz") as out:
        for member in tar.getmembers():
            out.addfile(member, tar.extractfile(member))
        big = tarfile.TarInfo("tiny-0.1.0-abc-arm64/wheels/big.whl")
        big.size = 1 << 20  # as incompressible as a wheel
        out.addfile(big, io.BytesIO(random.Random(0).randbytes(big.size)))
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    result = _deploy(str(bad), "pi@board")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"edgecnn: error: {bad}: damaged: invalid gzip data (")


@pytest.mark.parametrize("option", [["--parallel", "0"], ["--keep", "0"], ["--health-timeout", "1"]])
def test_out_of_range_options_exit_2(fake_bundle: Path, option: list[str]) -> None:
    result = _deploy(str(fake_bundle), "pi@board", *option)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_bundle_is_read_without_unpacking(fake_bundle: Path) -> None:
    info = read_bundle(fake_bundle)
    assert (info.name, info.version, info.top, info.machine) == (
        "tiny",
        "0.1.0-abc",
        "tiny-0.1.0-abc-arm64",
        "aarch64",
    )
    assert len(info.sha256) == 64 and info.size == fake_bundle.stat().st_size
    with tarfile.open(fake_bundle) as tar:
        assert info.unpacked_size == sum(m.size for m in tar.getmembers()) == 86  # install.py, manifest


def test_release_size_is_the_installers_estimate(tmp_path: Path) -> None:
    """Read from the archive before uploading, it equals what install.py computes on the board
    from the unpacked bundle (wheel contents, byte code for .py files, a damaged wheel)."""
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg/__init__.py", "x = 1\n" * 500)
        archive.writestr("pkg/core.so", bytes(7000))
        archive.writestr("pkg-1.0.dist-info/RECORD", "pkg/__init__.py,,\n")
    top = "tiny-0.1.0-abc-arm64"
    files = {
        "install.py": b"print('hi')\n",
        "manifest.json": json.dumps({"name": "tiny", "version": "0.1.0-abc"}).encode(),
        "model.tflite": bytes(1234),
        "requirements.txt": b"pkg==1.0 --hash=sha256:00\n",
        "config/device.yaml": b"model: {}\n",
        "systemd/edgecnn-detect.service": b"[Unit]\n",
        "wheels/pkg-1.0-py3-none-any.whl": wheel.getvalue(),
        "wheels/bad-1.0-py3-none-any.whl": b"not a zip" * 30,
    }
    path = tmp_path / "b.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    expected = release_space_needed(tmp_path / "unpacked" / top)
    assert read_bundle(path).release_size == expected
    copies = sum(len(files[name]) for name in ("model.tflite", "manifest.json", "requirements.txt"))
    copies += len(files["config/device.yaml"]) + len(files["systemd/edgecnn-detect.service"])
    # the .py file counts three times (its byte code), the damaged wheel its own size
    assert expected == VENV_BASE_BYTES + copies + 3 * 3000 + 7000 + 18 + 270


def test_deploy_imports_no_heavy_packages() -> None:
    code = (
        "import sys; from edgecnn.cli.deploy_cmd import deploy; import edgecnn.deploy; "
        "print(sorted(m for m in ('numpy', 'tensorflow', 'cv2', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
