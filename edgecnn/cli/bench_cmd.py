"""``edgecnn bench``: latency of a ``.tflite`` model per thread count, board side (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli._specflags import with_spec_flags


@with_spec_flags
def bench(
    # Not checked by Typer (exists=True): a missing file must give edgecnn's one-line error.
    model: Annotated[Path, typer.Argument(help="The .tflite model file.", show_default=False)],
    threads: Annotated[str, typer.Option("--threads", help="Interpreter thread counts, e.g. 1,2,4.")] = "1",
    runs: Annotated[
        int, typer.Option("--runs", min=1, max=1_000_000, help="Timed frames per thread count.")
    ] = 100,
    warmup: Annotated[int, typer.Option("--warmup", min=0, max=1_000_000, help="Untimed frames first.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    spec_settings: dict[str, Any] | None = None,
) -> None:
    """Time a model: p50/p90/p99 latency and FPS per thread count, peak RSS; stages for specs.

    With an embedded spec (or the model settings below), each frame (synthetic, 640x480) is
    timed as preprocess, invoke and postprocess (decode and NMS for detectors).
    """
    from edgecnn.bench import bench_model, parse_threads

    result = bench_model(
        model, threads=parse_threads(threads), runs=runs, warmup=warmup, spec_settings=spec_settings
    )
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.describe())
