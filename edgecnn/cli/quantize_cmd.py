"""``edgecnn quantize``: a trained Keras model to a ``.tflite`` carrying its spec, with an optional
float-vs-quantised report and quality gate."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._progress import progress_bar


class QuantMode(StrEnum):
    """Conversion modes."""

    int8 = "int8"
    fp16 = "fp16"
    dynamic = "dynamic"
    float = "float"


class IoChoice(StrEnum):
    """Input/output tensor types."""

    int8 = "int8"
    uint8 = "uint8"
    float = "float"


def quantize(
    # Not checked by Typer (exists=True): a missing model must give edgecnn's one-line error.
    model: Annotated[Path, typer.Argument(help="The trained MODEL.keras (spec.json next to it).")],
    out: Annotated[Path, typer.Option("--out", help="The .tflite file to write.")],
    calib: Annotated[
        Path | None, typer.Option("--calib", help="Calibration set folder (edgecnn calib build); int8 only.")
    ] = None,
    mode: Annotated[QuantMode, typer.Option("--mode", help="Conversion mode.")] = QuantMode.int8,
    io: Annotated[
        IoChoice | None,
        typer.Option("--io", help="Input/output tensor type. Default: int8 for --mode int8, else float."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", exists=True, help="data.yaml: report float vs quantised."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split the report measures on.")] = "val",
    max_drop: Annotated[
        float | None,
        typer.Option(
            "--max-drop", min=0.0, help="Gate: exit 1 if mAP50 / top-1 accuracy drops by more points."
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Report folder. Default: next to --out, OUT_report/.")
    ] = None,
    allow_calib_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-calib-mismatch",
            help="Use a --calib set built from data with other classes than the model's (deliberately).",
        ),
    ] = False,
) -> None:
    """Convert MODEL.keras to TFLite (full-integer int8 by default) with its spec embedded.

    int8 refuses any op left in float. With --data, writes report.json and report.md
    (metrics, agreement, output error, size, latency, worst layers); --max-drop gates on it.
    """
    from edgecnn.data.locate import require_data_yaml
    from edgecnn.quantize.report import summary_lines

    if data is not None:
        require_data_yaml(data)
    from edgecnn.quantize.workflow import run_quantize

    outcome = run_quantize(
        model,
        out,
        calib=calib,
        mode=mode.value,
        io=io.value if io is not None else None,
        data=data,
        split=split,
        max_drop=max_drop,
        report_dir=report,
        progress=progress_bar,
        allow_calib_mismatch=allow_calib_mismatch,
    )
    result = outcome.result
    typer.echo(
        f"{result.path}: {result.mode}, {result.io} input/output, {result.size} bytes, "
        f"{len(result.info.ops)} ops, spec embedded, checked in a child process"
    )
    if outcome.report is not None:
        for line in summary_lines(outcome.report):
            typer.echo(line)
        typer.echo(f"report: {outcome.report_dir}/report.md")
