"""What C++ writes to stderr during ``edgecnn train``: TensorFlow's harmless grappler line is
dropped, a libjpeg warning about a damaged JPEG comes on a line of its own, not in the bar."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.data.synth import write_synth_dataset
from edgecnn.train.fit import TRAINING_NOISE

REMAPPER = (
    "E0000 00:00:1764000000.123456    1234 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: "
    "Mutation::Apply error: fanout 'gradient_tape/yolo_lite_test_1/block1_act_1/LeakyRelu/LeakyReluGrad' "
    "exist for missing node 'yolo_lite_test_1/block1_conv_1/BiasAdd'.\n"
)


def test_training_noise_is_the_grappler_line_and_the_start_up_notices_only() -> None:
    assert TRAINING_NOISE.search(REMAPPER)
    assert TRAINING_NOISE.search("I0000 00:00:1796043810.603326   23208 cudart_stub.cc:31] No cuda\n")
    for real in (
        REMAPPER.replace("LeakyReluGrad", "ReluGrad"),
        REMAPPER.replace("remapper failed", "layout failed"),
        "E0000 00:00:1796043820.431342   23208 other.cc:52] a real error\n",
        "Corrupt JPEG data: 912 extraneous bytes before marker 0xd9\n",
    ):
        assert not TRAINING_NOISE.search(real), real


def _corrupt(jpeg: Path) -> None:
    """Put junk bytes before the end marker, as a damaged download does: it still decodes."""
    data = jpeg.read_bytes()
    end = data.rindex(b"\xff\xd9")
    jpeg.write_bytes(data[:end] + b"\x00" * 912 + data[end:])


def _run_on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` with stderr on a pseudo-terminal (so the progress bar is drawn); its stderr."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    out = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(timeout=600)
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return code, out.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.slow
@pytest.mark.tf
def test_train_drops_the_grappler_line_and_shows_a_corrupt_jpeg_on_its_own_line(tmp_path: Path) -> None:
    data = write_synth_dataset(tmp_path / "data", "detect", n=24, imgsz=64, num_classes=2, seed=3,
                               ratios=(2 / 3, 1 / 3))
    for split in ("train", "val"):
        _corrupt(sorted((data.parent / split).glob("*.jpg"))[0])
    script = Path(sys.executable).with_name("edgecnn")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "edgecnn"]
    argv = [*command, "train", "--data", str(data), "--model", "yolo_lite_test", "--imgsz", "64",
            "--epochs", "1", "--batch", "8", "--out", str(tmp_path / "run")]
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # TensorFlow's E lines are printed, as for a user
    code, err = _run_on_a_terminal(argv, env)
    assert code == 0, err
    assert "epoch 1/1" in err  # the bar was drawn
    assert "remapper failed" not in err and "meta_optimizer" not in err, err
    # On a line of its own: after a newline or rich's "erase line", never after bar text.
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.replace("\x1b[2K", "\n")).split("\n")
    warning = re.compile(r"^warning: libjpeg: Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9$")
    assert [line for line in lines if warning.match(line)], err
    assert [line for line in lines if "Corrupt JPEG" in line and not line.startswith("warning:")] == [], err
