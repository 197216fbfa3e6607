"""``edgecnn inspect``: check a ``.tflite`` model and show its tensors and embedded spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.runtime.validate import validate_model


def inspect_model(
    # Not checked by Typer (exists=True): a missing file must give edgecnn's one-line error.
    model: Annotated[Path, typer.Argument(help="The .tflite model file.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds the interpreter may take to load and run the model.")
    ] = 60.0,
) -> None:
    """Validate a .tflite model in a child process; print backend, tensors and edgecnn metadata."""
    info = validate_model(model, timeout=timeout)
    typer.echo(json.dumps(info.to_dict(), indent=2) if as_json else info.describe())
