"""``edgecnn eval``: score predictions (or, later, a model) against a dataset split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli.app import app
from edgecnn.errors import UserError


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help="The data.yaml file.")],
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            exists=True,
            dir_okay=False,
            help="A COCO results JSON file ([{image_id, category_id, bbox, score}]) to score.",
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split holding the ground truth.")] = "val",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip bad ground-truth entries.")] = False,
    max_dets: Annotated[int, typer.Option(min=1, help="Detections kept per image and class.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Score predictions against a dataset split: COCO mAP (detect) or accuracy (classify)."""
    if predictions is None:
        raise UserError("pass --predictions FILE (evaluating a model file comes with the quantize issue)")
    from edgecnn.metrics.results_file import score_predictions_file

    report = score_predictions_file(predictions, data, split, skip_bad=skip_bad, max_dets=max_dets)
    typer.echo(json.dumps(report, indent=2) if as_json else _format(report))


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:6.2f}"


def _format(report: dict[str, Any]) -> str:
    per_class = report["per_class"]
    width = max(len("class"), *(len(n) for n in per_class))
    if report["task"] == "detect":
        lines = [
            f"{report['split']}: {report['num_images']} images, {report['num_predictions']} predictions",
            f"mAP50 {_pct(report['map50'])}   mAP50-95 {_pct(report['map50_95'])}",
            f"{'class':<{width}}  {'AP50':>6}  {'AP50-95':>7}  {'P':>6}  {'R':>6}  {'boxes':>6}",
        ]
        for name, m in per_class.items():
            lines.append(
                f"{name:<{width}}  {_pct(m['ap50'])}  {_pct(m['ap50_95']):>7}  {_pct(m['precision'])}  "
                f"{_pct(m['recall'])}  {m['num_gt']:>6}"
            )
        return "\n".join(lines)
    lines = [
        f"{report['split']}: {report['num_samples']} images",
        f"accuracy {_pct(report['accuracy'])}   macro P {_pct(report['precision'])}   "
        f"R {_pct(report['recall'])}   F1 {_pct(report['f1'])}",
        f"{'class':<{width}}  {'P':>6}  {'R':>6}  {'F1':>6}  {'images':>6}",
    ]
    for name, m in per_class.items():
        lines.append(
            f"{name:<{width}}  {_pct(m['precision'])}  {_pct(m['recall'])}  {_pct(m['f1'])}  "
            f"{m['support']:>6}"
        )
    return "\n".join(lines)
