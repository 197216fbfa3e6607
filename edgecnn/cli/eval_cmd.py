"""``edgecnn eval``: score a model (``.keras`` / ``.tflite``) or a predictions file against a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli._specflags import with_spec_flags
from edgecnn.errors import UserError
from edgecnn.outputs import check_output


@with_spec_flags
def eval_command(
    model: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="A model to evaluate: RUN_DIR/model.keras (spec.json next to it) or a .tflite (its "
            "embedded spec, or the model settings below).",
        ),
    ] = None,
    data: Annotated[
        Path, typer.Option("--data", exists=True, help="The data.yaml file.")
    ] = ...,
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
    conf: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="MODEL: confidence threshold (low: the whole PR curve).")
    ] = 0.001,
    iou: Annotated[float, typer.Option(min=0.01, max=1.0, help="MODEL: NMS IoU threshold.")] = 0.6,
    batch: Annotated[int, typer.Option(min=1, help="MODEL: images per Keras call.")] = 32,
    save_results: Annotated[
        Path | None,
        typer.Option("--save-results", dir_okay=False, help="MODEL: write its COCO results JSON here."),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            file_okay=False,
            help="Write pr_curve.png (detect) or confusion_matrix.png (classify) here.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    spec_settings: dict[str, Any] | None = None,
) -> None:
    """Score a model or a predictions file against a split: COCO mAP (detect) or accuracy (classify)."""
    from edgecnn.data.locate import require_data_yaml

    require_data_yaml(data)
    if model is None and predictions is None:
        raise UserError("pass a MODEL file (.keras or .tflite) or --predictions FILE")
    if model is not None and predictions is not None:
        raise UserError("pass a MODEL file or --predictions FILE, not both")
    inputs = (model, data, predictions, (spec_settings or {}).get("labels"), *_split_inputs(data, split))
    if save_results is not None:
        check_output(save_results, "--save-results", "file", inputs)
    if plots is not None:
        check_output(plots, "--plots", "dir", inputs)
    if model is not None:
        report, metrics = _evaluate_model(
            model, data, split, skip_bad, conf, iou, max_dets, batch, save_results, spec_settings or {}
        )
    else:
        from edgecnn.metrics.results_file import score_predictions_file
        from edgecnn.runtime.resolve import SETTING_FLAGS

        if spec_settings:
            given = ", ".join(SETTING_FLAGS[key] for key in spec_settings)
            raise UserError(f"{given}: model settings need a MODEL, not --predictions")
        if save_results is not None:
            raise UserError("--save-results needs a MODEL (a predictions file already is results)")
        report = score_predictions_file(predictions, data, split, skip_bad=skip_bad, max_dets=max_dets)
        metrics = _rescore_for_plots(predictions, data, split, skip_bad, max_dets) if plots else None
    if plots is not None and metrics is not None:
        from edgecnn.evaluation.plots import write_plots

        write_plots(metrics, plots)
    typer.echo(json.dumps(report, indent=2) if as_json else _format(report))


def _split_inputs(data: Path, split: str) -> list[Path]:
    """The files and folders ``split`` of ``data`` reads (an output must not land on them);
    none when data.yaml is bad: loading the split reports that."""
    from edgecnn.data.config import load_data_config

    try:
        return load_data_config(data).split_paths(split)
    except Exception:
        return []


def _evaluate_model(
    model: Path,
    data: Path,
    split: str,
    skip_bad: bool,
    conf: float,
    iou: float,
    max_dets: int,
    batch: int,
    save_results: Path | None,
    spec_settings: dict[str, Any],
) -> tuple[dict[str, Any], Any]:
    from edgecnn.cli._progress import progress_bar
    from edgecnn.data import load_split
    from edgecnn.evaluation.evaluator import evaluate
    from edgecnn.evaluation.predictor import load_predictor

    gt = load_split(data, split, skip_bad=skip_bad)
    predictor = load_predictor(model, batch_size=batch, spec_settings=spec_settings)
    with progress_bar(f"eval {model.name}", len(gt)) as update:  # the split is checked first, naming data
        result = evaluate(
            predictor, gt, conf=conf, iou=iou, max_det=max_dets, progress=update, source=str(data)
        )
    if save_results is not None:
        save_results.write_text(json.dumps(result.results))
    return result.report, result.metrics


def _rescore_for_plots(predictions: Path, data: Path, split: str, skip_bad: bool, max_dets: int) -> Any:
    """The metrics object of an already validated predictions file (its report has no curves)."""
    from edgecnn.data import load_split
    from edgecnn.evaluation.evaluator import score_results

    gt = load_split(data, split, skip_bad=skip_bad)
    return score_results(json.loads(predictions.read_text(encoding="utf-8")), gt, max_dets=max_dets)[1]


def _pct(value: float | None, sign: str = "") -> str:
    """A 0..1 metric as a percentage (the JSON keeps fractions)."""
    return "   n/a" if value is None else f"{100 * value:6.2f}{sign}"


def _format(report: dict[str, Any]) -> str:
    """The text report: percentages, marked as such (``train`` prints fractions, as Ultralytics)."""
    per_class = report["per_class"]
    width = max(len("class"), *(len(n) for n in per_class))
    if report["task"] == "detect":
        lines = [
            f"{report['split']}: {report['num_images']} images, {report['num_predictions']} predictions",
            f"mAP50 {_pct(report['map50'], '%')}   mAP50-95 {_pct(report['map50_95'], '%')}",
            f"{'class':<{width}}  {'AP50%':>6}  {'AP50-95%':>8}  {'P%':>6}  {'R%':>6}  {'boxes':>6}",
        ]
        for name, m in per_class.items():
            lines.append(
                f"{name:<{width}}  {_pct(m['ap50'])}  {_pct(m['ap50_95']):>8}  {_pct(m['precision'])}  "
                f"{_pct(m['recall'])}  {m['num_gt']:>6}"
            )
        return "\n".join(lines)
    lines = [
        f"{report['split']}: {report['num_samples']} images",
        f"accuracy {_pct(report['accuracy'], '%')}   macro P {_pct(report['precision'], '%')}   "
        f"R {_pct(report['recall'], '%')}   F1 {_pct(report['f1'], '%')}",
        f"{'class':<{width}}  {'P%':>6}  {'R%':>6}  {'F1%':>6}  {'images':>6}",
    ]
    for name, m in per_class.items():
        lines.append(
            f"{name:<{width}}  {_pct(m['precision'])}  {_pct(m['recall'])}  {_pct(m['f1'])}  "
            f"{m['support']:>6}"
        )
    return "\n".join(lines)
