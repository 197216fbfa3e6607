"""The arm64 bundle on the emulated Raspberry Pi: offline install, detections equal to x86, refusals.

The install goes the way a deploy reaches a real Pi: as ``pi`` over ssh, ``tar xzf`` and
``sudo python3 install.py``. Detections run ``edgecnn run`` (the daemon's command) on a short
MJPG video with the installed venv on the board and with this machine's edgecnn, and must
agree: same frames and labels, boxes within 1 px, scores within 1e-3. The video decoders of
the two OpenCV wheels differ by a level or two per pixel (FFmpeg's MJPEG decoding and
colour conversion are not bit-exact across CPUs), so that comparison uses the designed
colour-block detector, whose features saturate far from those differences; the interpreter
itself is compared bit for bit on a random-weight model with the same input tensor.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from board import HERE as TESTBED
from board import Board

from edgecnn.package._optable import OP_VERSIONS
from edgecnn.package.bundle import BundleResult
from edgecnn.package.opsprobe import probe_runtime

pytestmark = [pytest.mark.slow, pytest.mark.tf, pytest.mark.board]

FRAMES = 12
RELEASES = "/opt/edgecnn/releases"


def _run_args(model: str, video: str) -> list[str]:
    return ["run", "--model", model, "--source", video, "--jsonl", "-", "--max-frames", str(FRAMES)]


def _frames(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def installed(
    pi: Board, arm64_bundle: BundleResult, board_files: dict[str, Path], measurements: dict
) -> dict:
    """The bundle unpacked in pi's home and installed with sudo; the installer's summary."""
    top = arm64_bundle.path.name.removesuffix(".tar.gz")
    archive = pi.put(arm64_bundle.path)
    pi.put(board_files["video"], "video.avi")
    pi.ssh(f"rm -rf ~/bundle && mkdir ~/bundle && tar xzf {archive} -C ~/bundle")
    started = time.perf_counter()
    result = pi.ssh(f"sudo -n python3 ~/bundle/{top}/install.py", timeout=1800)
    measurements["install_seconds_wall"] = round(time.perf_counter() - started, 1)
    summary = json.loads(result.stdout.split("install.py: ", 1)[1])
    measurements["install_steps_seconds"] = summary["seconds"]
    return {**summary, "top": top, "output": result.stdout}


def test_board_is_an_arm64_debian_with_systemd_and_pi_user(pi: Board) -> None:
    assert pi.run("uname -m").stdout.strip() == "aarch64"
    assert pi.run("python3 -c 'import sys; print(sys.version_info[:2])'").stdout.strip() == "(3, 11)"
    assert pi.run("systemctl is-system-running").stdout.strip() == "running"
    assert pi.run("ps -o comm= -p 1").stdout.strip() == "systemd"
    who = pi.ssh("id -un; id -Gn; sudo -n id -u").stdout.split("\n")
    assert who[0] == "pi" and {"sudo", "video"} <= set(who[1].split()) and who[2] == "0"


def test_bundle_installs_offline_as_a_release(pi: Board, arm64_bundle: BundleResult, installed: dict) -> None:
    version = arm64_bundle.manifest["version"]
    assert installed["state"] == "installed" and installed["version"] == version
    assert pi.run("readlink /opt/edgecnn/current").stdout.strip() == f"releases/{version}"
    listing = pi.run(f"ls -A {RELEASES}/{version}").stdout.split()
    expected = [
        ".installed",
        "config",
        "manifest.json",
        "model.tflite",
        "requirements.txt",
        "systemd",
        "venv",
    ]
    assert sorted(listing) == sorted(expected)
    frozen = pi.run(f"{RELEASES}/{version}/venv/bin/python -m pip freeze --all").stdout
    assert "ai-edge-litert==2.3.0" in frozen and "numpy==2.4.6" in frozen and "tensorflow" not in frozen
    assert "model loads in ai_edge_litert 2.3.0" in installed["output"]
    # The service user, the config readable by it only, the unit known to systemd.
    assert pi.run("id -nG edgecnn").stdout.split() == ["edgecnn", "video"]
    assert pi.run("getent passwd edgecnn").stdout.strip().endswith(":/var/lib/edgecnn:/usr/sbin/nologin")
    assert pi.run("stat -c '%a %U %G' /etc/edgecnn/device.yaml").stdout.strip() == "640 root edgecnn"
    assert pi.run("cmp /etc/edgecnn/device.yaml /opt/edgecnn/current/config/device.yaml").returncode == 0
    unit = pi.run("systemctl show -p FragmentPath -p User -p LoadState edgecnn-detect.service").stdout
    assert "LoadState=loaded" in unit and "User=edgecnn" in unit
    assert "FragmentPath=/etc/systemd/system/edgecnn-detect.service" in unit
    # Installing the same bundle again changes nothing.
    again = pi.ssh(f"sudo -n python3 ~/bundle/{installed['top']}/install.py")
    assert '"state": "already installed"' in again.stdout


def test_detections_on_the_board_equal_x86(
    pi: Board, installed: dict, board_files: dict[str, Path], measurements: dict
) -> None:
    venv = "/opt/edgecnn/current/venv/bin"
    board_cmd = [f"{venv}/edgecnn", *_run_args("/opt/edgecnn/current/model.tflite", "/mnt/host/video.avi")]
    started = time.perf_counter()
    board = pi.ssh("sudo -n -u edgecnn " + shlex.join(board_cmd), timeout=1800)
    measurements["board_run_seconds_wall"] = round(time.perf_counter() - started, 1)
    local_cmd = [
        sys.executable,
        "-m",
        "edgecnn",
        *_run_args(str(board_files["model"]), str(board_files["video"])),
    ]
    x86 = subprocess.run(local_cmd, capture_output=True, text=True, check=True)

    arm_frames, x86_frames = _frames(board.stdout), _frames(x86.stdout)
    assert len(x86_frames) == len(arm_frames) == FRAMES, board.stderr[-2000:]
    box_diff = score_diff = 0.0
    total = 0
    for fx, fa in zip(x86_frames, arm_frames, strict=True):
        assert fx["frame"] == fa["frame"]
        assert len(fx["detections"]) == len(fa["detections"]), fx["frame"]
        unmatched = list(fa["detections"])
        for det in fx["detections"]:
            match = next(
                (
                    other
                    for other in unmatched
                    if other["label"] == det["label"]
                    and max(abs(a - b) for a, b in zip(other["box"], det["box"], strict=True)) <= 1.0
                    and abs(other["score"] - det["score"]) <= 1e-3
                ),
                None,
            )
            assert match is not None, (fx["frame"], det)
            unmatched.remove(match)
            box_diff = max(box_diff, *(abs(a - b) for a, b in zip(match["box"], det["box"], strict=True)))
            score_diff = max(score_diff, abs(match["score"] - det["score"]))
            total += 1
    assert total >= 10 * FRAMES, "the comparison needs detections"
    infer_arm = sorted(f["latency_ms"]["infer"] for f in arm_frames)[FRAMES // 2]
    infer_x86 = sorted(f["latency_ms"]["infer"] for f in x86_frames)[FRAMES // 2]
    measurements["comparison"] = {
        "frames": FRAMES,
        "detections": total,
        "max_box_diff_px": box_diff,
        "max_score_diff": score_diff,
        "median_infer_ms_arm64_emulated": infer_arm,
        "median_infer_ms_x86": infer_x86,
    }


RAW_OUTPUTS = """
import json, sys
import numpy as np
from edgecnn.runtime import TFLiteModel
model = TFLiteModel(sys.argv[1])
model.invoke_raw(np.load(sys.argv[2]))
print(json.dumps([o.astype(int).ravel().tolist() for o in model.outputs_raw()]))
"""


def test_interpreter_outputs_are_bit_identical_to_x86(
    pi: Board, installed: dict, board_files: dict[str, Path], tmp_path: Path, measurements: dict
) -> None:
    """The random-weight detector on the same int8 input tensor: every output value equal."""
    import numpy as np

    tensor = tmp_path / "input.npy"
    np.save(tensor, np.random.default_rng(0).integers(-128, 128, (1, 64, 64, 3), dtype=np.int8))
    model = pi.put(board_files["random_model"])
    board = pi.run(["/opt/edgecnn/current/venv/bin/python", "-c", RAW_OUTPUTS, model, pi.put(tensor)])
    local = [sys.executable, "-c", RAW_OUTPUTS, str(board_files["random_model"]), str(tensor)]
    x86 = subprocess.run(local, capture_output=True, text=True, check=True)
    arm_outputs = json.loads(board.stdout.splitlines()[-1])
    x86_outputs = json.loads(x86.stdout.splitlines()[-1])
    assert sorted(len(o) for o in arm_outputs) == [4 * 4 * 14, 8 * 8 * 14]  # TFLite may reorder outputs
    pairs = [
        (a, b) for o1, o2 in zip(arm_outputs, x86_outputs, strict=True) for a, b in zip(o1, o2, strict=True)
    ]
    measurements["raw_int8_outputs_differing"] = f"{sum(a != b for a, b in pairs)} of {len(pairs)}"
    assert arm_outputs == x86_outputs


def test_flipped_byte_is_refused_on_the_board_and_nothing_changes(pi: Board, installed: dict) -> None:
    state = (
        "find /opt/edgecnn /etc/edgecnn /etc/systemd/system -xdev -printf '%p %s %m %T@\\n' | sort;"
        " getent passwd edgecnn; getent group edgecnn video"
    )
    before = pi.run(state).stdout
    flip = (
        "import sys; p = sys.argv[1]; d = bytearray(open(p, 'rb').read()); d[len(d) // 2] ^= 1; "
        "open(p, 'wb').write(d)"
    )
    pi.ssh(f"rm -rf ~/damaged && cp -r ~/bundle/{installed['top']} ~/damaged")
    pi.ssh(f"python3 -c {shlex.quote(flip)} ~/damaged/model.tflite")
    result = pi.ssh("sudo -n python3 ~/damaged/install.py --force", check=False)
    assert result.returncode == 1
    assert "install.py: error: model.tflite: sha256 mismatch" in result.stderr
    assert pi.run(state).stdout == before


def test_operator_table_holds_for_the_aarch64_runtime(pi: Board, installed: dict, measurements: dict) -> None:
    """The ops table was measured with the x86_64 wheels; the aarch64 build resolves the same."""
    launcher = ["bash", str(TESTBED / "exec.sh"), "--name", pi.name, "--"]
    started = time.perf_counter()
    measured = probe_runtime("ai-edge-litert", "/opt/edgecnn/current/venv/bin/python", launcher=launcher)
    measurements["aarch64_op_probe_seconds"] = round(time.perf_counter() - started, 1)
    assert measured["version"] == "2.3.0"
    assert measured["versions"] == OP_VERSIONS[("ai-edge-litert", "2.3.0")]
