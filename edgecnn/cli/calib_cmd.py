"""``edgecnn calib build``: a class-balanced int8 calibration set from a dataset's train split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.cli._progress import progress_bar

calib_app = typer.Typer(help="Build calibration sets for int8 quantisation.", no_args_is_help=True)


@calib_app.command("build")
def build(
    data: Annotated[
        Path, typer.Option("--data", exists=True, help="The dataset's data.yaml.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The new set's folder, e.g. calibration/NAME.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Images to choose from the train split.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the choice (same data and seed: same set).")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Allow fewer than 50 images (int8 ranges get unreliable).")
    ] = False,
) -> None:
    """Copy class-balanced train images into a calibration set with a sha256 manifest and README.

    Refuses fewer than 50 images unless --force; warns below 100 (TensorFlow recommends 100-500).
    """
    from edgecnn.data.locate import require_data_yaml
    from edgecnn.outputs import check_output

    require_data_yaml(data)
    from edgecnn.quantize.calibration import build_calibration_set

    check_output(out, "--out", "dir", (data,))
    with progress_bar("copying calibration images", n) as update:
        result = build_calibration_set(data, out, n=n, seed=seed, force=force, progress=update)
    # result.warnings were logged (stderr) as they were found: not printed twice.
    covered = sum(1 for c in result.coverage if c.calib_images)
    typer.echo(
        f"{out}: {len(result.calibration)} images from the {result.split} split of {data}, "
        f"{covered} of {len(result.coverage)} classes covered (see {out / 'README.md'})"
    )
