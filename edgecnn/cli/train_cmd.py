"""``edgecnn train``: train a detector or classifier on a data.yaml into a run directory."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from edgecnn.errors import UserError
from edgecnn.outputs import check_output


class OptimizerChoice(StrEnum):
    """Optimisers of ``--optimizer``."""

    adamw = "adamw"
    sgd = "sgd"


class ResizeChoice(StrEnum):
    """Resize modes of ``--resize`` (Edge Impulse's fit longest axis, squash, fit shortest axis)."""

    letterbox = "letterbox"
    stretch = "stretch"
    crop = "crop"


class AnchorChoice(StrEnum):
    """Anchor sources of ``--anchors``."""

    auto = "auto"
    default = "default"


class WeightsChoice(StrEnum):
    """Initial weights of ``--weights``."""

    none = "none"
    imagenet = "imagenet"


def _augment_overrides(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--aug {item!r}: expected KEY=VALUE, e.g. --aug fliplr=0")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise UserError(f"--aug {item!r}: {value!r} is not a number") from None
    return out


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    return f"{where}: {err['msg']}"


def train_command(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", exists=True, help="The data.yaml file (not needed with --resume)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model name (`edgecnn models`); default: tiny_yolo_v3 at width 0.5, 160 px "
            "for detection, mobilenet_v2_035 at 96 px for classification."
        ),
    ] = None,
    imgsz: Annotated[
        int | None, typer.Option(min=16, help="Input size in pixels (default: the model's).")
    ] = None,
    width: Annotated[
        float | None, typer.Option(min=0.01, help="Width multiplier (default: the model's).")
    ] = None,
    resize: Annotated[
        ResizeChoice | None,
        typer.Option(
            help="How images meet the input size: letterbox (pad, default), stretch, or crop "
            "(classifiers: the centre). The model carries it to the board."
        ),
    ] = None,
    epochs: Annotated[
        int, typer.Option(min=1, help="Epochs to train; with --resume, train the run on to this many.")
    ] = 100,
    batch: Annotated[int, typer.Option(min=1, help="Images per step.")] = 16,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/train"),
    seed: Annotated[int, typer.Option(min=0, help="Seed for weights, data order and augmentation.")] = 0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Overwrite a run already in --out.")] = False,
    lr: Annotated[
        float | None, typer.Option(
            min=0.0,
            help="Peak learning rate (default: AdamW 0.01 for detection, 0.001 for classification; "
            "SGD 0.01).",
        )
    ] = None,
    optimizer: Annotated[OptimizerChoice, typer.Option(help="Optimiser.")] = OptimizerChoice.adamw,
    patience: Annotated[
        int, typer.Option(min=0, help="Stop after N epochs without a better validation (0: never).")
    ] = 50,
    val_every: Annotated[int, typer.Option(min=1, help="Validate every N epochs (and after the last).")] = 1,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Augment training images.")] = True,
    aug: Annotated[
        list[str] | None,
        typer.Option(
            help="Augmentation parameter KEY=VALUE (repeatable), e.g. --aug fliplr=0 --aug mosaic=1."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="Input pipeline threads (0: automatic).")] = 0,
    weights: Annotated[
        WeightsChoice,
        typer.Option(help="Initial weights: imagenet for MobileNet backbones (downloads once)."),
    ] = WeightsChoice.none,
    anchors: Annotated[
        AnchorChoice, typer.Option(help="auto: k-means on the training boxes; default: the model's.")
    ] = AnchorChoice.auto,
    label_smoothing: Annotated[float, typer.Option(min=0.0, max=0.99, help="Label smoothing.")] = 0.0,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip bad dataset entries.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final metrics as JSON.")] = False,
) -> None:
    """Train a model on a dataset; writes model.keras, spec.json, metrics.json and curves to --out."""
    from edgecnn.data.augment import AugmentConfig
    from edgecnn.data.locate import require_data_yaml
    from edgecnn.train.config import TrainConfig

    if data is not None:
        require_data_yaml(data)
    if data is None and not resume:
        raise UserError("pass --data DATA_YAML (or --resume to continue the run in --out)")
    if resume:
        _refuse_settings_on_resume(ctx, out)
    check_output(out, "--out", "dir", (data,))
    fields: dict[str, Any] = {
        "data": data,
        "model": model,
        "imgsz": imgsz,
        "width": width,
        "resize": None if resize is None else resize.value,
        "epochs": epochs,
        "batch": batch,
        "out": out,
        "seed": seed,
        "resume": resume,
        "exist_ok": exist_ok,
        "lr": lr,
        "optimizer": optimizer.value,
        "patience": patience,
        "val_every": val_every,
        "augment": augment,
        "workers": workers,
        "weights": None if weights is WeightsChoice.none else weights.value,
        "anchors": anchors.value,
        "label_smoothing": label_smoothing,
        "skip_bad": skip_bad,
    }
    if resume and not _given(ctx, "epochs"):
        del fields["epochs"]  # the run trains to its own epochs (given: it trains on to them)
    try:
        if aug:
            fields["augment_config"] = AugmentConfig(**_augment_overrides(aug))
        config = TrainConfig(**fields)
    except ValidationError as exc:
        raise UserError(_one_line(exc)) from None

    from edgecnn.train.fit import train

    result = train(config)
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=2))
        return
    m = result.metrics
    if m["task"] == "detect":
        score = f"mAP50 {m['map50'] or 0:.3f}  mAP50-95 {m['map50_95'] or 0:.3f}"
    else:
        score = f"accuracy {m['accuracy']:.3f}"
    stopped = " (stopped early)" if result.stopped_early else ""
    typer.echo(
        f"{result.model_path}: best epoch {result.best_epoch} of {result.epochs_run}{stopped}, "
        f"{m['split']} {score}, {result.seconds / 60:.1f} min"
    )


#: Flags that may come with --resume: where the run is, how to report, and how far to train
#: (``--epochs`` beyond the run's continues it there).
RESUME_FLAGS = {"out", "resume", "as_json", "workers", "epochs"}


def _refuse_settings_on_resume(ctx: typer.Context, out: Path) -> None:
    """A resumed run trains as it was started: a training flag given with --resume would be
    silently ignored, so it is an error naming it."""
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in RESUME_FLAGS and param.name is not None and _given(ctx, param.name)
    ]
    if given:
        raise UserError(
            f"{', '.join(given)}: --resume continues the run in {out} with its own settings "
            f"({out / 'train_config.json'}); drop {'them' if len(given) > 1 else 'it'}, or start a new run"
        )


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set the parameter ``name`` (on the command line or in the environment)."""
    return getattr(ctx.get_parameter_source(name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")
