"""Command-line interface: one module per command, registered on :data:`app`."""

from __future__ import annotations

from edgecnn.cli.app import app

# Importing a command module registers its command(s) on ``app``.
from edgecnn.cli import (  # noqa: F401  isort: skip
    data_cmd,
    train_cmd,
    eval_cmd,
    calib_cmd,
    quantize_cmd,
    bench_cmd,
    inspect_cmd,
    models_cmd,
    package_cmd,
    run_cmd,
)


def main() -> None:
    """Entry point of the ``edgecnn`` console script."""
    app(prog_name="edgecnn")


__all__ = ["app", "main"]
