"""Command-line interface: one module per command, registered on :data:`app`."""

from __future__ import annotations

from edgecnn.cli.app import app

# Importing a command module registers its command(s) on ``app``.
from edgecnn.cli import data_cmd, eval_cmd, inspect_cmd, models_cmd  # noqa: F401  isort: skip


def main() -> None:
    """Entry point of the ``edgecnn`` console script."""
    app(prog_name="edgecnn")


__all__ = ["app", "main"]
