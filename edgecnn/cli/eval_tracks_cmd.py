"""``edgecnn eval-tracks``: score tracker output against MOT ground truth (MOTA, IDF1, ...)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.errors import UserError


def eval_tracks(
    tracks: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="The tracker's output: edgecnn run --track JSON lines (.jsonl), or a MOT Challenge "
            "text file (frame,id,x,y,w,h,...).",
        ),
    ],
    gt: Annotated[
        Path,
        typer.Option(
            "--gt",
            exists=True,
            dir_okay=False,
            help="Ground truth, MOT Challenge text (data synth-video writes one).",
        ),
    ],
    iou: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Least IoU for a box to match an object.")
    ] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score tracks against ground truth: CLEAR MOT (MOTA, MOTP, ID switches) and IDF1.

    Frames are matched by number: edgecnn run counts frames from 1, as MOT files do.
    """
    from edgecnn.metrics.tracking import clear_mot, read_mot, read_track_records

    truth = read_mot(gt)
    if tracks.suffix.lower() == ".jsonl":
        found = read_track_records(tracks)
    else:
        found = read_mot(tracks, ground_truth=False)
    if not truth:
        raise UserError(f"{gt}: no ground-truth boxes")
    try:
        scores = clear_mot(truth, found, iou)
    except ValueError as exc:
        raise UserError(f"{tracks}: {exc}") from None
    if as_json:
        typer.echo(json.dumps(scores.to_dict(), indent=2))
        return

    def pct(value: float) -> str:
        return "-" if math.isnan(value) else f"{100 * value:.1f}"

    typer.echo(
        f"{scores.frames} frames, {scores.objects} ground-truth boxes of {scores.gt_tracks} objects, "
        f"{scores.hypotheses} tracked boxes with {scores.hypothesis_tracks} track ids"
    )
    typer.echo(
        f"MOTA {pct(scores.mota)}  MOTP {pct(scores.motp)}  IDF1 {pct(scores.idf1)}  "
        f"IDP {pct(scores.idp)}  IDR {pct(scores.idr)}"
    )
    typer.echo(
        f"ID switches {scores.id_switches}, misses {scores.misses}, false positives {scores.false_positives}"
    )
