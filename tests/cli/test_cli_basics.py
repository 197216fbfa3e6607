"""The CLI skeleton: help, version, exit codes, and docs that list every command."""

from __future__ import annotations

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


def test_unknown_option_exits_2_with_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", "inspect", "--no-such-flag"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "No such option" in proc.stderr
    assert "Traceback" not in proc.stderr
