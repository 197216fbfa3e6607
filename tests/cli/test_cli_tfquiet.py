"""TensorFlow's start-up notices stay out of the CLI's stderr; everything else gets through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.cli._tfquiet import filter_notices

ROOT = Path(__file__).resolve().parents[2]
NOTICES = ("All log messages before absl::InitializeLog", "cudart_stub.cc", "port.cc", "cuInit")
IMPORT_TF = (
    "import sys\n"
    "{install}"
    "import tensorflow as tf\n"
    "tf.config.list_physical_devices()\n"
    "sys.stderr.write('after import\\n')\n"
)


def _stderr_of(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


@pytest.mark.slow
def test_first_tensorflow_import_is_quiet() -> None:
    pytest.importorskip("tensorflow")
    plain = _stderr_of(IMPORT_TF.format(install=""))
    # This machine has no GPU: TensorFlow prints its notices (else the check below proves nothing).
    assert any(n in plain for n in NOTICES), plain
    quiet = _stderr_of(IMPORT_TF.format(install="from edgecnn.cli._tfquiet import install; install()\n"))
    assert [n for n in NOTICES if n in quiet] == [], quiet
    assert quiet.endswith("after import\n")


def test_other_output_during_the_capture_is_written_back() -> None:
    code = (
        "import os, sys\n"
        "from edgecnn.cli._tfquiet import captured_stderr_fd\n"
        "with captured_stderr_fd():\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are '\n"
        "             b'written to STDERR\\n')\n"
        "    os.write(2, b'E0000 00:00:1796043820.431342   23208 other.cc:52] a real error\\n')\n"
        "    sys.stderr.write('from python\\n')\n"
        "    print('stdout untouched')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "E0000 00:00:1796043820.431342   23208 other.cc:52] a real error\nfrom python\n"
    assert proc.stdout == "stdout untouched\n"


def test_filter_keeps_everything_but_the_notices() -> None:
    text = (
        "I0000 00:00:1796043810.594449   23208 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1796043810.603326   23208 cudart_stub.cc:31] Could not find cuda drivers\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
        "with the appropriate compiler flags.\n"
        "E0000 00:00:1796043820.431342   23208 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
        "Traceback (most recent call last):\n"
        "ImportError: libfoo.so: cannot open shared object file\n"
    )
    assert filter_notices(text) == (
        "Traceback (most recent call last):\nImportError: libfoo.so: cannot open shared object file\n"
    )


def test_train_help_states_the_defaults() -> None:
    from edgecnn.train.config import DEFAULT_CLASSIFIER, DEFAULT_DETECT_LR, DEFAULT_DETECTOR, DEFAULT_LR

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    name, width, size = DEFAULT_DETECTOR
    assert f"default: {name} at width {width}, {size} px" in result.output
    assert f"{DEFAULT_CLASSIFIER[0]} at {DEFAULT_CLASSIFIER[2]} px" in result.output
    detect, classify = DEFAULT_DETECT_LR["adamw"], DEFAULT_LR["adamw"]
    assert f"AdamW {detect} for detection, {classify} for classification" in result.output
    assert DEFAULT_DETECT_LR["sgd"] == DEFAULT_LR["sgd"] and f"SGD {DEFAULT_LR['sgd']})" in result.output
