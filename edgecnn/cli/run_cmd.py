"""``edgecnn run``: the detection daemon, from a device config or from a few flags.

Heavy modules (the interpreter, OpenCV, the daemon) are imported inside the command, so
that a bad config is reported before any of them loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.cli._specflags import with_spec_flags
from edgecnn.errors import ConfigError


@with_spec_flags
def run(
    # Paths are not checked by Typer (exists=True): a missing file must give edgecnn's one-line error.
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Device config (YAML); see docs/daemon.md.")
    ] = None,
    validate_config: Annotated[
        bool,
        typer.Option(
            "--validate-config",
            help="Check the config and the model (in a child process), print a summary, exit.",
        ),
    ] = False,
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Without --config: the .tflite model.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", "-s", help="Without --config: camera index, /dev/videoN, file, URL or folder."
        ),
    ] = None,
    jsonl: Annotated[
        str | None, typer.Option("--jsonl", help="Without --config: JSON-lines output file ('-': stdout).")
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            help="Without --config: also write each frame with its boxes drawn as a JPEG into this "
            "folder (named after the image for folders).",
        ),
    ] = None,
    track: Annotated[
        bool,
        typer.Option(
            "--track",
            help="Without --config: follow objects across frames (track_id on detections, "
            "new/update/end events); the config's 'track:' key.",
        ),
    ] = False,
    conf: Annotated[
        float | None, typer.Option("--conf", help="Without --config: score threshold (default: the model's).")
    ] = None,
    iou: Annotated[
        float | None,
        typer.Option("--iou", help="Without --config: NMS IoU threshold (default: the model's)."),
    ] = None,
    max_det: Annotated[
        int | None,
        typer.Option("--max-det", help="Without --config: most detections per frame (default: the model's)."),
    ] = None,
    classes: Annotated[
        str | None, typer.Option("--classes", help="Without --config: keep only these labels, 'person,car'.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Without --config: interpreter threads.")
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", min=1, help="Stop after this many frames.")
    ] = None,
    spec_settings: dict[str, Any] | None = None,
) -> None:
    """Run detection on a camera, stream or file until stopped (SIGTERM / Ctrl-C); results go to sinks."""
    from edgecnn.config.device import config_from_flags, load_device_config
    from edgecnn.runtime.resolve import SETTING_FLAGS

    shorthand = {
        "--model": model,
        "--source": source,
        "--jsonl": jsonl,
        "--save": save,
        "--track": track or None,
        "--conf": conf,
        "--iou": iou,
        "--max-det": max_det,
        "--classes": classes,
        "--threads": threads,
    }
    given = [flag for flag, value in shorthand.items() if value is not None]
    given += [SETTING_FLAGS[key] for key in spec_settings or {}]
    if config is not None:
        if given:
            raise ConfigError(
                f"{', '.join(given)} cannot be combined with --config: set them in the config file"
            )
        device = load_device_config(config)
    elif model is None or source is None:
        raise ConfigError("pass --config FILE, or --model M.tflite and --source S")
    else:
        labels = [name.strip() for name in classes.split(",") if name.strip()] if classes else None
        device = config_from_flags(
            model,
            source,
            jsonl=jsonl,
            save=save,
            track=track,
            conf=conf,
            iou=iou,
            max_det=max_det,
            classes=labels,
            num_threads=threads,
            model_settings=spec_settings,
        )
    if validate_config:
        from edgecnn.daemon.startup import check_config

        typer.echo(check_config(device))
        return
    from edgecnn.daemon.startup import run_daemon

    raise typer.Exit(run_daemon(device, max_frames=max_frames))
