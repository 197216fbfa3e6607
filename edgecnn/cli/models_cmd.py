"""``edgecnn models``: list the model zoo with size and cost."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from edgecnn.architectures import model_table
from edgecnn.architectures.stats import ModelFigures


class TaskChoice(StrEnum):
    """The tasks a model can do."""

    classify = "classify"
    detect = "detect"


def format_table(rows: list[ModelFigures]) -> str:
    """The plain-text table printed by ``edgecnn models`` (also pasted into docs/models.md)."""
    header = ("name", "task", "params", "MACs", "input", "classes", "output")
    lines = [header]
    for r in rows:
        output = (
            "classes"
            if r.task == "classify"
            else f"{r.layout} s{'/'.join(map(str, r.strides))} x{r.anchors_per_scale}"
        )
        lines.append(
            (
                r.name,
                r.task,
                f"{r.params / 1e6:.2f} M",
                f"{r.macs / 1e6:.1f} M",
                f"{r.input_size[0]}x{r.input_size[1]}x{r.channels}",
                str(r.num_classes),
                output,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 3, 5}  # numbers right-aligned
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def models(
    task: Annotated[
        TaskChoice | None, typer.Option("--task", help="Only list classifiers or only detectors.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    include_test: Annotated[
        bool,
        typer.Option("--include-test", help="Also list the tiny *_test variants used by the test-suite."),
    ] = False,
) -> None:
    """List the registered architectures: task, parameters, MACs and default input size.

    Figures are at each model's default input size and reference class count (ImageNet 1000,
    CIFAR/MNIST 10, COCO 80, VOC 20). MACs are multiply-accumulates of Conv2D,
    DepthwiseConv2D and Dense layers for one image.
    """
    rows = model_table(task=task.value if task else None, include_test=include_test)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        typer.echo(format_table(rows))
