"""Command-line interface: one module per command, loaded on demand by :data:`app`
(see :data:`edgecnn.cli.app.COMMANDS`)."""

from __future__ import annotations

from edgecnn.cli.app import app


def main() -> None:
    """Entry point of the ``edgecnn`` console script."""
    app(prog_name="edgecnn")


__all__ = ["app", "main"]
