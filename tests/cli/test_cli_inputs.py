"""Small input files (configs, hosts lists, predictions) are read safely: never a pipe or a
device, never a huge file, never a traceback for deep nesting or a duplicate key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.errors import UserError
from edgecnn.inputs import read_text_input

DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "model: " + "[" * 5000 + "]" * 5000 + "\n"


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "edgecnn", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_read_text_input(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would block: it must not be opened
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "big.txt").write_text("x" * 2000)
    (tmp_path / "ok.txt").write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_text_input(tmp_path / "ok.txt", "--x") == "hello\n"  # a BOM is dropped
    cases = [
        (fifo, "--x", "not a regular file (a pipe or a device)"),
        ("/dev/zero", "--x", "not a regular file (a pipe or a device)"),
        (tmp_path, "--x", "is a directory"),
        (tmp_path / "nope", "--x", "no such file"),
        (tmp_path / "latin1.txt", "--x", "not UTF-8 text (byte 3)"),
    ]
    for path, what, message in cases:
        with pytest.raises(UserError, match=re.escape(message)):
            read_text_input(path, what)
    with pytest.raises(UserError, match="2000 bytes; more than"):
        read_text_input(tmp_path / "big.txt", "--x", max_bytes=1000)


def test_commands_read_bad_small_inputs_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text(DEEP_JSON)
    (tmp_path / "deep.yaml").write_text(DEEP_YAML)
    (tmp_path / "twice.yaml").write_text(
        "model: {path: a.tflite}\nsource: {type: opencv, input: 0}\nmodel: {path: b.tflite}\n"
    )
    data = tmp_path / "data.yaml"
    data.write_text("train: images\nnames: [a]\n")
    cases = [
        (["eval", "--data", str(data), "--predictions", "/dev/zero"], "--predictions /dev/zero: not a"),
        (["eval", "--data", str(data), "--predictions", str(tmp_path / "deep.json")], "nested too deeply"),
        (["run", "--config", str(tmp_path / "deep.yaml"), "--validate-config"], "YAML: nested too deeply"),
        (
            ["run", "--config", str(tmp_path / "twice.yaml"), "--validate-config"],
            "twice.yaml:3: key 'model' is set twice, on line 1 and line 3",
        ),
        (["deploy", str(tmp_path / "deep.json"), "--hosts", "/dev/zero"], "--hosts /dev/zero: not a regular"),
    ]
    for args, message in cases:
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)


def test_resume_of_a_damaged_run_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("train_config.json", "last.npz", "spec.json"):
        (run / name).write_text("{}")
    (run / "train_state.json").write_text("{not json")
    proc = _cli("train", "--out", str(run), "--resume")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"edgecnn: error: --resume: {run} holds a damaged run (train_config.json / train_state.json: "
        + proc.stderr.split("train_state.json: ", 1)[1].strip()
    ]
