"""The flags for models without edgecnn metadata, shared by the commands that run models.

A ``.tflite`` converted elsewhere carries no edgecnn spec; ``run``, ``eval`` and ``bench``
still run it when the user gives the settings as flags (docs/runtime.md lists them):

    edgecnn eval yolo.tflite --data data.yaml --task detect --labels labels.txt \\
        --anchors '10,14 23,27 37,58; 81,82 135,169 344,319'

:func:`with_spec_flags` adds the flags to a command and hands the command one mapping,
``spec_settings`` (:func:`~edgecnn.runtime.resolve.resolve_spec` keywords; flags not given
are left out), so each command declares them once and they read the same everywhere.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

PANEL = "Models without edgecnn metadata (these override metadata)"


def _flag(kind: type, flag: str, help_text: str) -> Any:
    option = typer.Option(flag, help=help_text, rich_help_panel=PANEL, show_default=False)
    return Annotated[kind | None, option]


#: resolve_spec keyword -> the flag's type annotation (the names match
#: :data:`edgecnn.runtime.resolve.SETTING_FLAGS`; a test checks it).
FLAGS: dict[str, Any] = {
    "task": _flag(str, "--task", "detect or classify (required without metadata)."),
    "labels": _flag(str, "--labels", "Class names: a labels.txt (one per line) or 'a,b,c' (required)."),
    "imgsz": _flag(str, "--imgsz", "Input size N or WIDTHxHEIGHT (default: the input tensor's)."),
    "color_order": _flag(str, "--color-order", "RGB or BGR (default RGB)."),
    "mean": _flag(str, "--mean", "Mean, one value or one per channel, 0..255 units (default 0)."),
    "std": _flag(str, "--std", "Std, one value or one per channel, 0..255 units (default 255)."),
    "resize": _flag(str, "--resize", "letterbox, stretch or crop (classifiers; default letterbox)."),
    "pad_value": _flag(int, "--pad-value", "Letterbox padding grey 0..255 (default 114)."),
    "layout": _flag(
        str, "--layout", "classes, yolo_v2, yolo_v3, yolo_v8 or yolo_end2end (default by task and outputs)."
    ),
    "anchors": _flag(str, "--anchors", "Detectors: 'w,h w,h; w,h ...', ';' between scales, input pixels."),
    "strides": _flag(str, "--strides", "Detectors: strides per scale, '8,16' (default: from the outputs)."),
    "class_activation": _flag(
        str,
        "--class-activation",
        "sigmoid, softmax or none (default: sigmoid for yolo_v3, none for the"
        " anchor-free yolo_v8 / yolo_end2end, else softmax).",
    ),
    "xy_scale": _flag(float, "--xy-scale", "Box centre scale 1..4 (YOLOv4 scale_x_y; 2 for YOLOv5 heads)."),
}

F = TypeVar("F", bound=Callable[..., Any])


def with_spec_flags(command: F) -> F:
    """Add :data:`FLAGS` to a Typer command that takes ``spec_settings: dict[str, Any]``.

    The wrapper's signature is the command's, ``spec_settings`` replaced by one keyword
    parameter per flag (what Typer reads); the call collects the flags given into
    ``spec_settings``.
    """
    signature = inspect.signature(command, eval_str=True)
    if "spec_settings" not in signature.parameters:
        raise TypeError(f"{command.__name__} must take a spec_settings parameter")
    params = [p for p in signature.parameters.values() if p.name != "spec_settings"]
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
        for name, annotation in FLAGS.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings = {name: kwargs.pop(name) for name in FLAGS if name in kwargs}
        settings = {name: value for name, value in settings.items() if value is not None}
        return command(*args, spec_settings=settings, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}  # type: ignore[attr-defined]
    wrapper.__annotations__["return"] = signature.return_annotation
    return wrapper  # type: ignore[return-value]
