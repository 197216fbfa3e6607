"""Outputs are checked before any work: never an input, never under a file, the right kind."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.data.synth import write_synth_dataset
from edgecnn.errors import UserError
from edgecnn.outputs import check_output


def test_check_output(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder").mkdir()
    fresh = tmp_path / "new" / "deeper" / "out.json"
    assert check_output(fresh, "--out") == fresh
    cases = [
        ((model, "--out", "file", [model]), "it is an input of this command"),
        ((tmp_path / "." / "m.tflite", "--out", "file", [model]), "it is an input of this command"),
        ((tmp_path / "afile" / "x.json", "--out", "file", []), "afile is not a directory"),
        ((tmp_path / "afile" / "a" / "b", "--out", "dir", []), "afile is not a directory"),
        ((tmp_path / "folder", "--out", "file", []), "is a directory, expected a file path"),
        ((tmp_path / "afile", "--out", "dir", []), "is a file, expected a folder"),
        ((tmp_path, "--out", "dir", [model]), "it holds an input of this command"),
        ((tmp_path / "folder" / "x.tflite", "--out", "file", [tmp_path / "folder"]), "an input folder"),
    ]
    for args, message in cases:
        with pytest.raises(UserError, match=message):
            check_output(*args)
    link = tmp_path / "link.tflite"
    link.symlink_to(model)
    with pytest.raises(UserError, match="it is an input"):
        check_output(link, "--out", "file", [model])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synth_dataset(tmp_path_factory.mktemp("d"), "detect", n=8, imgsz=32, ratios=(0.5, 0.5))


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "edgecnn", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_commands_refuse_bad_outputs_before_working(dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "score": 0.9}]))
    data_before = dataset.read_bytes()
    afile = tmp_path / "afile"
    cases = [
        (
            ["eval", "--data", str(dataset), "--predictions", str(preds), "--plots", str(afile / "p")],
            f"--plots {afile / 'p'}: {afile} is not a directory",
        ),
        (["data", "split", str(dataset), "--out", str(dataset.parent)], "it holds an input of this command"),
        (["calib", "build", "--data", str(dataset), "--out", str(afile)], "is a file, expected a folder"),
        (["train", "--data", str(dataset), "--out", str(afile / "run")], "afile is not a directory"),
        (["data", "synth", str(dataset.parent), "--n", "4"], "not empty; data synth writes a whole dataset"),
    ]
    for args, message in cases:
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
    assert dataset.read_bytes() == data_before


def test_eval_refuses_to_write_results_over_its_data(dataset: Path) -> None:
    # A MODEL is needed for --save-results; the check comes before the model is even read.
    result = CliRunner().invoke(
        app, ["eval", str(dataset), "--data", str(dataset), "--save-results", str(dataset)]
    )
    assert result.exit_code == 2 and "it is an input of this command" in result.stderr


def test_a_folder_that_refuses_new_files_is_found_before_the_work() -> None:
    # /proc is a folder root may write in by its permission bits, yet nothing can be created
    # there: the check creates (and deletes) a file to know.
    proc = _cli("data", "synth", "/proc/edgecnn-test", "--n", "4", "--imgsz", "32")
    assert proc.returncode == 2
    expected = "edgecnn: error: OUT /proc/edgecnn-test: cannot write in /proc (No such file or directory)"
    assert proc.stderr.strip().splitlines() == [expected]


def test_os_errors_read_as_one_line() -> None:
    from edgecnn.cli.app import os_error_line

    assert os_error_line(FileNotFoundError(2, "No such file or directory", "/x/y")) == (
        "/x/y: No such file or directory"
    )
    assert os_error_line(OSError(18, "Invalid cross-device link", "/a", None, "/b")) == (
        "/a -> /b: Invalid cross-device link"
    )
    assert os_error_line(OSError(28, "No space left on device")) == "No space left on device"


def test_atomic_outputs_get_the_mode_open_would_give(tmp_path: Path) -> None:
    from edgecnn.outputs import new_file_mode
    from edgecnn.quantize.convert import write_atomic

    old = os.umask(0o027)
    try:
        assert new_file_mode() == 0o640
        write_atomic(tmp_path / "m.tflite", b"model")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.tflite").stat().st_mode) == 0o640  # mkstemp alone: 0o600
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o640
