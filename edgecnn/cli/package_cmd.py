"""``edgecnn package``: build an offline, hash-pinned installation bundle for a board."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli._specflags import with_spec_flags


class Arch(StrEnum):
    """Target CPU architectures."""

    arm64 = "arm64"
    x86_64 = "x86_64"


class Runtime(StrEnum):
    """TFLite interpreter packages the board can use."""

    ai_edge_litert = "ai-edge-litert"
    tflite_runtime = "tflite-runtime"


@with_spec_flags
def package(
    # Not checked by Typer (exists=True): a missing file must give edgecnn's one-line error.
    model: Annotated[
        Path,
        typer.Argument(
            help="The .tflite model: from edgecnn quantize, an Ultralytics export, or another model "
            "with the model settings below (embedded in the bundled copy).",
            show_default=False,
        ),
    ],
    target: Annotated[Arch, typer.Option("--target", help="The board's CPU.")] = Arch.arm64,
    python: Annotated[str, typer.Option("--python", help="The board's CPython version.")] = "3.11",
    runtime: Annotated[
        Runtime,
        typer.Option("--runtime", help="TFLite interpreter on the board (tflite-runtime: Python 3.11 only)."),
    ] = Runtime.ai_edge_litert,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Device config to ship (default: deploy/config/device.example.yaml)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="The .tar.gz to write, or a directory for the default name (default: dist/).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Bundle name (default: the model's spec name).")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Release version (default: edgecnn version + content digest)."),
    ] = None,
    glibc: Annotated[
        str, typer.Option("--glibc", help="The board's glibc (Debian 12 / Raspberry Pi OS Bookworm: 2.36).")
    ] = "2.36",
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Download the wheels again, ignoring the cache.")
    ] = False,
    edgecnn_wheel: Annotated[
        Path | None, typer.Option("--edgecnn-wheel", help="Ship this edgecnn wheel instead of building one.")
    ] = None,
    spec_settings: dict[str, Any] | None = None,
) -> None:
    """Bundle a model with its wheels, config, unit and installer for offline install on a board."""
    from edgecnn.errors import UserError
    from edgecnn.package.bundle import package_model
    from edgecnn.package.wheelhouse import Target

    try:
        major, minor = (int(part) for part in glibc.split("."))
    except ValueError:
        raise UserError(f"--glibc {glibc!r}: expected MAJOR.MINOR, e.g. 2.36") from None
    board = Target(arch=target.value, python=python, runtime=runtime.value, glibc=(major, minor))
    result = package_model(
        model,
        board,
        out=out,
        config=config,
        name=name,
        version=version,
        refresh=refresh,
        edgecnn_wheel=edgecnn_wheel,
        log=lambda line: typer.echo(line, err=True),
        spec_settings=spec_settings,
    )
    manifest = result.manifest
    typer.echo(
        f"{result.path}  {result.size / 1e6:.1f} MB  {manifest['name']} {manifest['version']}  "
        f"{len(result.wheels)} wheels  {board.describe()}"
    )
