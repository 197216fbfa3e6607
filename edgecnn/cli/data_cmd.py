"""``edgecnn data``: dataset commands (``check``, ``synth``, ``synth-video``, ``split``)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli._progress import progress_bar
from edgecnn.data import load_splits
from edgecnn.data.split import parse_ratios, plan_split, write_split_plan
from edgecnn.data.synth import SHAPES, write_synth_dataset
from edgecnn.errors import UserError
from edgecnn.outputs import check_output

data_app = typer.Typer(help="Inspect and validate datasets described by a data.yaml.", no_args_is_help=True)

_SKIPPED_SHOWN = 5  # skipped entries listed per split in the text report; --json lists them all


@data_app.command()
def check(
    data_yaml: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The dataset's data.yaml file.")
    ],
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="Comma-separated splits to check, e.g. train,val. Default: every split set."
        ),
    ] = None,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Skip images with bad entries and count them instead of failing."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Read every image entry of a dataset and report formats, counts and problems.

    Exits 2 with one line naming the file and entry at the first bad entry, unless --skip-bad.
    """
    names = [s.strip() for s in split.split(",") if s.strip()] if split else None
    splits = load_splits(data_yaml, names, skip_bad=skip_bad)
    if as_json:
        report = {"data": str(data_yaml), "splits": {name: s.summary() for name, s in splits.items()}}
        typer.echo(json.dumps(report, indent=2))
        return
    for name, loaded in splits.items():
        typer.echo(_format_summary(name, loaded.summary()))


def _format_summary(name: str, summary: dict[str, Any]) -> str:
    detect = summary["task"] == "detect"
    counts = f", {summary['boxes']} boxes" if detect else ""
    lines = [
        f"{name}: {summary['format']} {summary['task']}, {summary['images']} images{counts}, "
        f"{summary['skipped']} skipped"
        + (f", {summary['dropped']} empty boxes dropped" if summary["dropped"] else "")
    ]
    width = max(len("class"), *(len(n) for n in summary["classes"]))
    lines.append(f"  {'id':>3}  {'class':<{width}}  {'boxes' if detect else 'images':>6}")
    for i, (cls, count) in enumerate(summary["classes"].items()):
        lines.append(f"  {i:>3}  {cls:<{width}}  {count:>6}")
    empty = [cls for cls, count in summary["classes"].items() if count == 0]
    if empty:  # a class the model would never see here (train) or never be scored on (val)
        lines.append(f"  no {'boxes' if detect else 'images'} of: {', '.join(empty)}")
    skipped = summary["skipped_entries"]
    for message in skipped[:_SKIPPED_SHOWN]:
        lines.append(f"  skipped: {message}")
    if len(skipped) > _SKIPPED_SHOWN:
        lines.append(f"  ... and {len(skipped) - _SKIPPED_SHOWN} more skipped (--json lists all)")
    return "\n".join(lines)


class SynthTask(StrEnum):
    """What the synthetic set is for."""

    detect = "detect"
    classify = "classify"


@data_app.command()
def synth(
    out: Annotated[Path, typer.Argument(file_okay=False, help="Folder to write the dataset into.")],
    task: Annotated[SynthTask, typer.Option(help="detect: COCO JSON boxes; classify: class folders.")] = (
        SynthTask.detect
    ),
    n: Annotated[int, typer.Option("--n", min=1, max=1_000_000, help="Total images over all splits.")] = 600,
    imgsz: Annotated[int, typer.Option(min=16, max=4096, help="Image width and height in pixels.")] = 160,
    classes: Annotated[int, typer.Option(min=1, max=len(SHAPES), help="Number of shape classes.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    ratios: Annotated[str, typer.Option(help="train,val[,test] fractions.")] = "0.7,0.2,0.1",
) -> None:
    """Generate a deterministic synthetic dataset (shapes on textured, noisy backgrounds)."""
    try:
        fractions = [float(r) for r in ratios.split(",")]
    except ValueError:
        raise UserError(f"--ratios: expected comma-separated numbers, got {ratios!r}") from None
    check_output(out, "OUT", "dir")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out}: not empty; data synth writes a whole dataset into a new or empty folder")
    with progress_bar(f"writing {out}", n) as update:
        data_yaml = write_synth_dataset(
            out, task.value, n=n, imgsz=imgsz, num_classes=classes, seed=seed, ratios=fractions,
            progress=update,
        )
    typer.echo(f"wrote {n} images to {out}; dataset file: {data_yaml}")


@data_app.command("synth-video")
def synth_video(
    out: Annotated[Path, typer.Argument(dir_okay=False, help="The video to write (.avi, MJPG).")],
    frames: Annotated[int, typer.Option(min=1, max=100_000, help="Number of frames.")] = 60,
    objects: Annotated[int, typer.Option(min=1, max=50, help="Moving shapes in the scene.")] = 3,
    imgsz: Annotated[int, typer.Option(min=32, max=4096, help="Frame width and height in pixels.")] = 160,
    classes: Annotated[int, typer.Option(min=1, max=len(SHAPES), help="Number of shape classes.")] = 4,
    fps: Annotated[float, typer.Option(min=1.0, max=240.0, help="Frame rate written into the file.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same video.")] = 0,
) -> None:
    """Generate a video of shapes moving over a fixed background, with MOT-format ground
    truth (OUT.gt.txt: frame,id,x,y,w,h,1,class,visibility) for checking tracking."""
    from edgecnn.data.synth_video import write_synth_video

    if out.suffix.lower() != ".avi":
        raise UserError(f"{out}: the video is written as MJPG, name it .avi")
    check_output(out, "OUT", "file")
    with progress_bar(f"writing {out}", frames) as update:
        truth = write_synth_video(
            out, frames=frames, objects=objects, imgsz=imgsz, num_classes=classes, fps=fps, seed=seed,
            progress=update,
        )
    typer.echo(
        f"wrote {frames} frames with {objects} moving objects to {out}; "
        f"ground truth ({len(truth)} boxes): {out.with_suffix('.gt.txt')}"
    )


class SplitFormat(StrEnum):
    """Dataset formats the split can be written in."""

    coco = "coco"
    yolo = "yolo"
    voc = "voc"
    folders = "folders"


@data_app.command("split")
def split_command(
    data_yaml: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The dataset's data.yaml file.")
    ],
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="New dataset folder (new or empty).")],
    ratios: Annotated[str, typer.Option(help="train,val[,test] fractions summing to 1.")] = "0.7,0.2,0.1",
    seed: Annotated[int, typer.Option(help="Shuffle seed; the same seed gives the same split.")] = 0,
    format: Annotated[
        SplitFormat | None, typer.Option("--format", help="Format to write. Default: the source's.")
    ] = None,
    source: Annotated[
        str, typer.Option("--from", help="Comma-separated splits to pool and re-split, e.g. train,val.")
    ] = "train",
) -> None:
    """Split one pool of images into stratified train / val / test splits and write them with a data.yaml.

    Every class lands in every split when it has enough images; split sizes are within one
    image of the ratios.
    """
    check_output(out, "--out", "dir", (data_yaml,))
    pooled = [s.strip() for s in source.split(",") if s.strip()]
    plan = plan_split(data_yaml, parse_ratios(ratios), seed=seed, source=pooled)
    with progress_bar(f"writing {out}", plan.total) as update:
        report = write_split_plan(plan, out, format.value if format else None, progress=update)
    counts = ", ".join(f"{name} {n}" for name, n in report.images.items())
    typer.echo(f"wrote {report.format} {counts} images to {out}; dataset file: {report.data_yaml}")
    unit = "images" if plan.task == "classify" else "boxes"
    width = max(len("class"), *(len(n) for n in report.names))
    typer.echo(f"  {'class':<{width}}" + "".join(f"  {name:>6}" for name in report.images) + f"  ({unit})")
    for i, name in enumerate(report.names):
        typer.echo(f"  {name:<{width}}" + "".join(f"  {report.classes[s][i]:>6}" for s in report.images))
