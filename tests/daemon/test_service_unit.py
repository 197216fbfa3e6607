"""The systemd unit: ``systemd-analyze verify`` accepts it, ``systemd-analyze security`` rates
its exposure at most 3.0, and it has the settings the daemon relies on."""

from __future__ import annotations

import configparser
import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgecnn.config.device import DeviceConfig

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "edgecnn-detect.service"


def _require_tool(command: str) -> str:
    spec = importlib.util.spec_from_file_location(
        "edgecnn_tests_root_conftest", ROOT / "tests" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.require_tool(command)


def _settings() -> dict[str, list[str]]:
    """``[Service]`` and ``[Unit]`` keys to their values (keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}{key}", []).append(value)
    return values


def _exec_start() -> list[str]:
    return shlex.split(_settings()["[Service]ExecStart"][0])


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart's program replaced by one that exists here (verify checks it)."""
    program = shutil.which("true")
    assert program is not None
    text = UNIT.read_text().replace(_exec_start()[0], program)
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_systemd_analyze_verify_accepts_the_unit(unit_copy: Path) -> None:
    tool = _require_tool("systemd-analyze")
    proc = subprocess.run([tool, "verify", str(unit_copy)], capture_output=True, text=True, timeout=60)
    output = (proc.stdout + proc.stderr).splitlines()
    ours = [line for line in output if unit_copy.name in line or str(unit_copy) in line]
    assert proc.returncode == 0 and ours == [], output


def test_verify_would_catch_a_typo(unit_copy: Path) -> None:
    tool = _require_tool("systemd-analyze")
    unit_copy.write_text(unit_copy.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    proc = subprocess.run([tool, "verify", str(unit_copy)], capture_output=True, text=True, timeout=60)
    assert "Unknown key" in proc.stdout + proc.stderr


def test_security_exposure_is_at_most_3(unit_copy: Path) -> None:
    tool = _require_tool("systemd-analyze")
    proc = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", "--threshold=30", str(unit_copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 3.0, proc.stdout


def test_the_unit_has_what_the_daemon_relies_on() -> None:
    s = _settings()
    one = {key: values[-1] for key, values in s.items()}
    assert one["[Service]Type"] == "notify" and one["[Service]NotifyAccess"] == "main"
    assert one["[Service]Restart"] == "on-failure"
    assert one["[Service]RestartPreventExitStatus"] == "2"  # bad config or model: restarting cannot help
    assert int(one["[Service]WatchdogSec"]) >= 10
    assert int(one["[Service]TimeoutStopSec"]) > DeviceConfig.model_fields["stop_timeout"].default + 1
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert one[f"[Service]{key}"] == "yes", key
    assert one["[Service]ProtectSystem"] == "strict" and one["[Service]DevicePolicy"] == "closed"
    allowed = " ".join(s["[Service]DeviceAllow"])
    for device in ("char-video4linux", "char-media", "char-dma_heap"):  # USB/CSI cameras, libcamera, buffers
        assert device in allowed
    assert one["[Service]StateDirectory"] == "edgecnn" and one["[Service]MemoryMax"]
    assert one["[Service]User"] == "edgecnn" and "video" in one["[Service]SupplementaryGroups"].split()
    assert "PrivateDevices" not in one  # it would hide the camera


def test_exec_start_runs_the_daemon_with_the_installed_config() -> None:
    argv = _exec_start()
    assert argv[0].endswith("/bin/edgecnn") and argv[1:] == ["run", "--config", "/etc/edgecnn/device.yaml"]
    parser: Any = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert parser["Install"]["WantedBy"] == "multi-user.target"
