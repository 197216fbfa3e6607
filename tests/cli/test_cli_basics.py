"""The CLI skeleton: help, version, exit codes, docs that list every command, and commands
imported only when they are used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn import __version__
from edgecnn.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _command_paths() -> list[list[str]]:
    """Every leaf command as its argv path, e.g. ``["data", "check"]``."""
    import typer.main

    group = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd, prefix: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*prefix, name])
        else:
            paths.append(prefix)

    walk(group, [])
    return paths


def test_version() -> None:
    result = runner.invoke(app, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.strip() == f"edgecnn {__version__}"


def test_no_args_shows_help() -> None:
    result = runner.invoke(app, [], catch_exceptions=False)
    assert "Usage" in result.output
    for path in _command_paths():
        assert path[0] in result.output


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p))
def test_every_command_has_help_and_docs(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    # The docstring's first line is shown under "Usage": a command without one shows nothing there.
    assert len(lines) > 2 and not lines[1].strip().startswith(("Options", "Arguments", "╭"))
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert f"edgecnn {' '.join(path)}" in docs, f"docs/cli.md does not document `edgecnn {' '.join(path)}`"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["inspect", "--no-such-flag"], "inspect: no such option: --no-such-flag (see edgecnn inspect"),
        (["--no-such-flag"], "no such option: --no-such-flag"),
        (["bench"], "bench: missing argument 'model' (see edgecnn bench --help)"),
        (
            ["data", "synth", "out", "--n", "0"],
            "data synth: invalid value for '--n': ",
        ),
        (
            ["deploy", "b.tar.gz", "pi@board", "--parallel", "x"],
            "deploy: invalid value for '--parallel': ",
        ),
    ],
    ids=["unknown-option", "unknown-root-option", "missing-argument", "out-of-range", "not-a-number"],
)
def test_bad_flags_give_one_line_and_exit_2(args: list[str], line: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    # The wording after the option is click's (it varies between versions); the shape is edgecnn's.
    assert len(lines) == 1 and lines[0].lower().startswith(f"edgecnn: error: {line}"), proc.stderr
    assert lines[0].endswith("--help)")
    assert proc.stdout == ""


def test_group_without_sub_command_shows_its_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgecnn", "data"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Usage: edgecnn data" in proc.stdout + proc.stderr and "synth" in proc.stdout + proc.stderr


# Records the modules loaded by the time the process exits (also on SystemExit from the CLI).
CLI_WITH_MODULES = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
from edgecnn.cli import main
main()
"""


def _modules_after(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODULES_OUT": str(out)}
    proc = subprocess.run(
        [sys.executable, "-c", CLI_WITH_MODULES, *args], capture_output=True, text=True, env=env, timeout=120
    )
    return proc, json.loads(out.read_text())


def test_a_command_imports_only_its_own_module(tmp_path: Path) -> None:
    """``edgecnn run`` on a board must not pay for the other commands' imports (datasets,
    the model zoo, TensorFlow), nor for numpy, OpenCV or the interpreter before it works."""
    proc, loaded = _modules_after(tmp_path, "run", "--help")
    assert proc.returncode == 0 and "--config" in proc.stdout, proc.stderr
    commands = [m for m in loaded if m.startswith("edgecnn.cli.") and m.endswith("_cmd")]
    assert commands == ["edgecnn.cli.run_cmd"]
    heavy = ("numpy", "cv2", "ai_edge_litert", "tflite_runtime", "tensorflow", "keras", "edgecnn.data")
    assert [m for m in loaded if m.startswith(heavy)] == []


def test_the_command_table_matches_the_modules() -> None:
    """Every command module of the package is in COMMANDS (which is all ``edgecnn --help`` knows)."""
    from edgecnn.cli.app import COMMANDS

    modules = sorted(p.stem for p in (ROOT / "edgecnn" / "cli").glob("*_cmd.py"))
    assert sorted({target.split(":")[0].rsplit(".", 1)[1] for target in COMMANDS.values()}) == modules


def test_resume_refuses_training_flags_it_would_ignore(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--resume", "--lr", "0.1", "--batch", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"edgecnn: error: --batch, --lr: --resume continues the run in {run} with its own settings "
        f"({run / 'train_config.json'}); drop them, or start a new run"
    )
    assert not run.exists()
    # Where the run is, how to report and how far to train (--epochs) are not training settings.
    argv = ["train", "--out", str(run), "--resume", "--workers", "2", "--json", "--epochs", "9"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and "has no train_config.json; nothing to resume" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["models"]], ids=" ".join)
def test_a_reader_that_went_away_ends_the_command_quietly(args: list[str]) -> None:
    # `edgecnn ... | head -1`: once head exits, every write fails with EPIPE. The read end is
    # closed before the child writes anything, so every write fails.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edgecnn", *args], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""  # no "edgecnn: error: Broken pipe", no traceback
    assert proc.returncode == 1


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer ends a Ctrl-C with exit 130 and not a word; edgecnn says it was interrupted, and
    # what the work kept when the interrupt carries that (edgecnn.train.TrainingInterrupted).
    import edgecnn.cli.models_cmd as models_cmd

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(models_cmd, "model_table", interrupted)
    result = CliRunner().invoke(app, ["models"], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (130, "edgecnn: interrupted\n")

    def told(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("in epoch 2 of 3: continue with `edgecnn train --out r --resume`")

    monkeypatch.setattr(models_cmd, "model_table", told)
    result = CliRunner().invoke(app, ["models"], catch_exceptions=False)
    assert result.exit_code == 130
    assert result.stderr == (
        "edgecnn: interrupted: in epoch 2 of 3: continue with `edgecnn train --out r --resume`\n"
    )
