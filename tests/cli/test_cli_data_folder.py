"""``--data DIR``: every command that reads a data.yaml refuses a folder in one line that says
what to pass instead (docs/datasets.md), before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "{dir}", "--out", "{tmp}/run"],
        ["eval", "{tmp}/model.keras", "--data", "{dir}"],
        ["calib", "build", "--data", "{dir}", "--out", "{tmp}/calib"],
        ["quantize", "{tmp}/model.keras", "--out", "{tmp}/m.tflite", "--mode", "float", "--data", "{dir}"],
    ],
    ids=["train", "eval", "calib", "quantize"],
)
def test_a_folder_as_data_says_which_file_to_give(argv: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    folder.mkdir()
    (folder / "data.yaml").write_text("train: train\nval: val\n")
    (tmp_path / "model.keras").write_bytes(b"")
    args = [a.format(dir=folder, tmp=tmp_path) for a in argv]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"edgecnn: error: --data {folder}: a folder, not a data.yaml; did you mean {folder / 'data.yaml'}?"
    ]
    assert not (tmp_path / "run").exists() and not (tmp_path / "calib").exists()
