"""The Typer application and the error handling shared by every command.

Commands live one per module in this package and are registered in
:mod:`edgecnn.cli`. Each command parses its options, calls one library function and
prints; it never holds logic of its own.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from edgecnn import __version__
from edgecnn.errors import EdgecnnError


class _ErrorHandlingGroup(TyperGroup):
    """Turns edgecnn errors into one line on stderr and the error's exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EdgecnnError as exc:
            if os.environ.get("EDGECNN_DEBUG"):
                raise
            typer.echo(f"edgecnn: error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="edgecnn",
    cls=_ErrorHandlingGroup,
    help="Train, int8-quantise, package and run small CNNs on Raspberry Pi class boards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """edgecnn: from a dataset to int8 detections on an arm64 board."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
