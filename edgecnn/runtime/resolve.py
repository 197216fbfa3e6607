"""The model spec to run with: embedded metadata, user flags, and the model's own tensors.

A model converted by edgecnn carries its spec (:mod:`edgecnn.runtime.metadata`), an
Ultralytics export carries metadata that gives one (:mod:`edgecnn.runtime.ultralytics`). A
model from elsewhere has none; it still runs when the user passes the settings as flags:
:func:`resolve_spec` merges the two (flags win), fills the input size from the model's
input tensor, and says which flag to pass when something required is missing;
:func:`resolve_file_spec` does it for a model file (what ``run``, ``eval`` and ``bench``
call with their flags).
:func:`check_spec_matches_model` checks a spec against the model's tensor shapes, and
:func:`scale_order` maps detection outputs to scales (TFLite does not keep the Keras
output order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgecnn.errors import ConfigError, ModelError
from edgecnn.runtime.spec import ANCHOR_FREE_LAYOUTS, ANCHOR_LAYOUTS, ModelSpec

#: The flag of each :func:`resolve_spec` setting (the command-line names of docs/runtime.md).
SETTING_FLAGS = {
    "task": "--task",
    "labels": "--labels",
    "imgsz": "--imgsz",
    "color_order": "--color-order",
    "mean": "--mean",
    "std": "--std",
    "resize": "--resize",
    "pad_value": "--pad-value",
    "layout": "--layout",
    "anchors": "--anchors",
    "strides": "--strides",
    "class_activation": "--class-activation",
    "xy_scale": "--xy-scale",
    "conf": "--conf",
    "iou": "--iou",
    "max_det": "--max-det",
}


#: What a model with neither metadata lacks, for messages (each adds what to pass or set).
NO_METADATA = "has no edgecnn or Ultralytics metadata (Ultralytics exports run as they come)"


class MissingSettingsError(ModelError):
    """A model without edgecnn (or Ultralytics) metadata, and settings it needs were not given.

    Attributes:
        source: the model's name for messages.
        missing: the settings (:func:`resolve_spec` keywords), e.g. ``["task", "labels"]``.
    """

    def __init__(self, source: str, missing: Sequence[str]) -> None:
        self.source = source
        self.missing = list(missing)
        flags = join_names(SETTING_FLAGS[key] for key in missing)
        super().__init__(f"{source} {NO_METADATA}: pass {flags}")


#: Class activation by layout without metadata (others: softmax): yolo_v2 heads and classifiers
#: are trained with a softmax, yolo_v3 with sigmoids; anchor-free heads give probabilities.
_DEFAULT_ACTIVATION = {"yolo_v3": "sigmoid", "yolo_v8": "none", "yolo_end2end": "none"}


def join_names(names: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(names)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

Anchors = Sequence[Sequence[Sequence[float]]]


def parse_imgsz(text: str | int | Sequence[int]) -> tuple[int, int]:
    """``"96"``, ``96``, ``"128x96"`` or ``(128, 96)`` to ``(width, height)``."""
    if isinstance(text, int):
        return text, text
    try:
        values = [int(v) for v in (text.lower().split("x") if isinstance(text, str) else text)]
    except ValueError:
        raise ConfigError(f"image size {text!r}: expected N or WIDTHxHEIGHT") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0:
        raise ConfigError(f"image size {text!r}: expected N or WIDTHxHEIGHT")
    return values[0], values[1]


def parse_floats(text: str | float | Sequence[float]) -> tuple[float, ...]:
    """``"0.5,0.5,0.5"``, ``127.5`` or a sequence to a tuple of floats."""
    if isinstance(text, int | float):
        return (float(text),)
    if isinstance(text, str):
        try:
            return tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"{text!r}: expected comma-separated numbers") from None
    return tuple(float(v) for v in text)


def parse_anchors(text: str | Anchors) -> list[list[tuple[float, float]]]:
    """Anchors per scale: ``"10,14 23,27 37,58; 81,82 135,169 344,319"`` (``;`` between scales,
    spaces between pairs, ``w,h`` per pair) or nested sequences, to ``[[(w, h), ...], ...]``."""
    if isinstance(text, str):
        try:
            scales = [
                [_pair(p.split(",")) for p in scale.split()] for scale in text.split(";") if scale.strip()
            ]
        except ValueError:
            raise ConfigError(f"anchors {text!r}: expected 'w,h w,h ...; w,h ...'") from None
    else:
        scales = [[_pair(p) for p in scale] for scale in text]
    if not scales or any(not scale for scale in scales):
        raise ConfigError(f"anchors {text!r}: every scale needs at least one w,h pair")
    return scales


def _pair(values: Sequence[Any]) -> tuple[float, float]:
    if len(values) != 2:
        raise ValueError("an anchor is a w,h pair")
    return float(values[0]), float(values[1])


def parse_ints(text: str | Sequence[int]) -> list[int]:
    """``"8,16"`` or a sequence to a list of ints."""
    if isinstance(text, str):
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"{text!r}: expected comma-separated integers") from None
    return [int(v) for v in text]


def load_labels(labels: str | Path | Sequence[str]) -> list[str]:
    """Labels from a list, a ``labels.txt`` (one per line, blank lines skipped) or ``"a,b,c"``.

    A string is read as a file when such a file exists, else as a comma-separated list
    (``"person,"`` is the one-label list).
    """
    if isinstance(labels, Path) or (isinstance(labels, str) and Path(labels).is_file()):
        path = Path(labels)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read labels: {exc.strerror or exc}") from None
        names = [line.strip() for line in lines if line.strip()]
        if not names:
            raise ConfigError(f"{path}: the labels file is empty")
        return names
    if isinstance(labels, str):
        if "," not in labels:
            raise ConfigError(
                f"labels {labels!r}: no such file; pass a labels.txt path or a comma-separated list"
            )
        return [name.strip() for name in labels.split(",") if name.strip()]
    return [str(name) for name in labels]


def resolve_spec(
    embedded: ModelSpec | None,
    *,
    task: str | None = None,
    labels: str | Path | Sequence[str] | None = None,
    imgsz: int | str | Sequence[int] | None = None,
    color_order: str | None = None,
    mean: str | float | Sequence[float] | None = None,
    std: str | float | Sequence[float] | None = None,
    resize: str | None = None,
    pad_value: int | None = None,
    layout: str | None = None,
    anchors: str | Anchors | None = None,
    strides: str | Sequence[int] | None = None,
    class_activation: str | None = None,
    xy_scale: float | None = None,
    conf: float | None = None,
    iou: float | None = None,
    max_det: int | None = None,
    input_shape: Sequence[int] | None = None,
    output_shapes: Sequence[Sequence[int]] | None = None,
    source: str = "the model",
) -> ModelSpec:
    """Merge embedded metadata with flags (flags win) into a validated :class:`ModelSpec`.

    Args:
        embedded: the spec read from the model, or None.
        task: ``detect`` or ``classify``.
        labels: class names, a ``labels.txt`` path, or ``"a,b,c"``.
        imgsz: input size, ``N`` or ``(width, height)`` / ``"WxH"``; default: the model's
            input tensor.
        color_order, mean, std, resize, pad_value: :class:`InputSpec` fields.
        layout, anchors, strides, class_activation, xy_scale: :class:`OutputSpec` fields.
            Without metadata ``layout`` defaults to ``classes`` for classify; for detect, to
            what :func:`anchor_free_layout` makes of a model with one 3-D output (no anchors
            needed) and to ``yolo_v3`` otherwise. ``strides`` defaults to what the output grid
            sizes imply, ``class_activation`` to ``sigmoid`` for ``yolo_v3``, ``none`` for the
            anchor-free layouts (their scores are probabilities) and ``softmax`` otherwise,
            and ``xy_scale`` to 1.0 (the classic YOLOv2/v3 centre decoding; YOLOv4's
            ``scale_x_y``, 2.0 for YOLOv5-style heads).
        conf, iou, max_det: default thresholds.
        input_shape: the model's input tensor shape ``(1, H, W, C)``.
        output_shapes: the model's output tensor shapes; with ``input_shape`` the result is
            checked against them (:func:`check_spec_matches_model`).
        source: the model's name for messages.

    Raises:
        MissingSettingsError: no metadata and a required setting is missing (the message names
            the flags to pass).
        ModelError: the result does not fit the model's tensors.
        ConfigError: a flag value is invalid.
    """
    if embedded is None:
        missing = [key for key, value in (("task", task), ("labels", labels)) if value is None]
        if imgsz is None and input_shape is None:
            missing.append("imgsz")
        anchor_free = layout in ANCHOR_FREE_LAYOUTS if layout else _one_3d_output(output_shapes)
        if task == "detect" and anchors is None and not anchor_free:
            missing.append("anchors")
        if missing:
            raise MissingSettingsError(source, missing)
        doc: dict[str, Any] = {"task": task, "labels": [], "input": {}, "output": {}}
    else:
        doc = embedded.model_dump(mode="python")

    if task is not None:
        doc["task"] = task
    inp, out, thresholds = doc["input"], doc["output"], doc.setdefault("thresholds", {})
    if labels is not None:
        doc["labels"] = load_labels(labels)
    if imgsz is not None:
        inp["width"], inp["height"] = parse_imgsz(imgsz)
    elif embedded is None and input_shape is not None:
        inp["height"], inp["width"] = int(input_shape[1]), int(input_shape[2])
    if embedded is None and input_shape is not None and len(input_shape) == 4:
        inp["channels"] = int(input_shape[3])
    for key, value in (("color_order", color_order), ("resize", resize), ("pad_value", pad_value)):
        if value is not None:
            inp[key] = value
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            inp[key] = parse_floats(value)

    if layout is not None:
        out["layout"] = layout
    elif "layout" not in out or (doc["task"] == "classify") != (out["layout"] == "classes"):
        out["layout"] = _default_layout(doc["task"], len(doc["labels"]), output_shapes)
    if out["layout"] in ANCHOR_FREE_LAYOUTS:
        # an anchor spec switched to an anchor-free layout by a flag keeps no anchors
        out.pop("anchors", None)
        out.pop("strides", None)
    if anchors is not None:
        out["anchors"] = parse_anchors(anchors)
    if strides is not None:
        out["strides"] = parse_ints(strides)
    elif out["layout"] in ANCHOR_LAYOUTS and not out.get("strides"):
        inferred = _strides_from_shapes(input_shape, output_shapes)
        if inferred is None:
            raise ModelError(f"{source}: cannot tell the detection strides from its outputs: pass --strides")
        out["strides"] = inferred
    if class_activation is not None:
        out["class_activation"] = class_activation
    elif embedded is None:
        out["class_activation"] = _DEFAULT_ACTIVATION.get(out["layout"], "softmax")
    if xy_scale is not None:
        out["xy_scale"] = float(xy_scale)
    for key, value in (("conf", conf), ("iou", iou), ("max_det", max_det)):
        if value is not None:
            thresholds[key] = value

    try:
        spec = ModelSpec.model_validate(doc)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors()[:3]
        )
        raise ConfigError(f"{source}: invalid model settings: {errors}") from None
    if input_shape is not None and output_shapes is not None:
        carried = "the edgecnn metadata" if embedded is not None else "the given settings"
        flags = (("--labels", labels), ("--anchors", anchors), ("--strides", strides), ("--layout", layout))
        given = [flag for flag, value in flags if value is not None]
        check_spec_matches_model(
            spec,
            input_shape,
            output_shapes,
            source,
            input_from=f"--imgsz {imgsz}" if imgsz is not None else carried,
            output_from=" / ".join(given) if given else carried,
        )
    return spec


def resolve_file_spec(
    path: str | Path, settings: Mapping[str, Any] | None = None, source: str | None = None
) -> ModelSpec:
    """The spec a ``.tflite`` file runs with: its embedded edgecnn metadata (or, without it, the
    spec its Ultralytics metadata gives) with ``settings`` applied (:func:`resolve_spec`
    keywords, None values ignored), checked against its tensors. Without settings the
    carried spec is returned as it is.

    Raises:
        MissingSettingsError: no metadata, and ``settings`` lacks a required one.
        ModelError: missing or corrupt file, invalid metadata, or a spec that does not fit.
        ConfigError: an invalid setting.
    """
    from edgecnn.runtime.metadata import carried_spec, open_model_file, parse_model_file

    source = source or str(path)
    with open_model_file(path) as data:
        parsed = parse_model_file(data, source)
        embedded, _ = carried_spec(data, parsed, source)
        inputs = [t.shape for t in parsed.main.input_tensors]
        outputs = [t.shape for t in parsed.main.output_tensors]
    given = {key: value for key, value in (settings or {}).items() if value is not None}
    if embedded is not None and not given:
        return embedded
    return resolve_spec(
        embedded,
        **given,
        input_shape=inputs[0] if len(inputs) == 1 else None,
        output_shapes=outputs,
        source=source,
    )


def _strides_from_shapes(
    input_shape: Sequence[int] | None, output_shapes: Sequence[Sequence[int]] | None
) -> list[int] | None:
    if not input_shape or not output_shapes or len(input_shape) != 4:
        return None
    strides = []
    for shape in output_shapes:
        if len(shape) != 4 or not shape[1] or input_shape[1] % shape[1]:
            return None
        strides.append(int(input_shape[1]) // int(shape[1]))
    return sorted(strides)


def _one_3d_output(output_shapes: Sequence[Sequence[int]] | None) -> bool:
    return output_shapes is not None and len(output_shapes) == 1 and len(output_shapes[0]) == 3


def _default_layout(task: str, num_classes: int, output_shapes: Sequence[Sequence[int]] | None) -> str:
    if task == "classify":
        return "classes"
    if output_shapes is not None and _one_3d_output(output_shapes):  # an anchor-free head
        return anchor_free_layout(output_shapes[0], num_classes) or "yolo_v8"  # (checked later)
    return "yolo_v3"


def anchor_free_layout(shape: Sequence[int], num_classes: int, end2end: bool | None = None) -> str | None:
    """The anchor-free layout a detection output of ``shape`` has, or None if it fits neither.

    ``yolo_v8`` is ``(1, 4 + C, N)`` or ``(1, N, 4 + C)``; ``yolo_end2end`` is ``(1, K, 6)``.
    With ``C = 2`` a ``(1, K, 6)`` output fits both: ``end2end`` (what the model's metadata
    says: an end-to-end head or an ``nms=True`` export) decides; when it is unknown (None),
    a last axis of 6 is end-to-end, the rule of Ultralytics' own TFLite reader.

    Args:
        shape: the output tensor's shape.
        num_classes: number of labels ``C``.
        end2end: True: the model is known to give NMS'd rows; False: known not to; None:
            unknown.
    """
    if len(shape) != 3 or shape[0] != 1:
        return None
    fits_v8 = 4 + num_classes in (shape[1], shape[2])
    fits_end2end = shape[2] == 6
    if end2end is True:
        return "yolo_end2end" if fits_end2end else None
    if end2end is False:
        return "yolo_v8" if fits_v8 else None
    return "yolo_end2end" if fits_end2end else "yolo_v8" if fits_v8 else None


def _grid(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def scale_order(spec: ModelSpec, output_shapes: Sequence[Sequence[int]]) -> list[int]:
    """For a detection spec, the output index of each scale: ``outputs[order[i]]`` is the
    tensor of ``strides[i]``. Matched by grid size, since TFLite may reorder outputs. For the
    anchor-free layouts, ``[0]``: their one output.

    Raises:
        ModelError: the outputs do not fit the spec's strides, anchors and labels.
    """
    layout, classes = spec.output.layout, spec.num_classes
    if layout in ANCHOR_FREE_LAYOUTS:
        end2end = layout == "yolo_end2end"
        if len(output_shapes) == 1 and anchor_free_layout(output_shapes[0], classes, end2end) == layout:
            return [0]
        channels = 4 + classes
        want = "(1,K,6)" if layout == "yolo_end2end" else f"(1,{channels},N) or (1,N,{channels})"
        raise ModelError(
            f"output tensors {_shapes(output_shapes)} do not match the edgecnn metadata: a {layout} head "
            f"with {classes} labels has one {want} output"
        )
    height, width = spec.input.height, spec.input.width
    order = []
    for stride, anchors in zip(spec.output.strides, spec.output.anchors, strict=True):
        want = (1, _grid(height, stride), _grid(width, stride), len(anchors) * (5 + spec.num_classes))
        matches = [i for i, shape in enumerate(output_shapes) if tuple(shape) == want and i not in order]
        if not matches:
            raise ModelError(
                f"output tensors {_shapes(output_shapes)} do not match the edgecnn metadata: stride "
                f"{stride} needs a {_shape(want)} tensor ({len(anchors)} anchors x "
                f"(5 + {spec.num_classes} classes) channels)"
            )
        order.append(matches[0])
    return order


def check_spec_matches_model(
    spec: ModelSpec,
    input_shape: Sequence[int],
    output_shapes: Sequence[Sequence[int]],
    source: str,
    input_from: str = "the edgecnn metadata",
    output_from: str = "the edgecnn metadata",
) -> None:
    """Check the spec's input size, channels, classes and scales against the tensor shapes.

    ``input_from`` / ``output_from`` name where the spec's input / output settings came from,
    for the message (a flag such as ``--imgsz 128``, or the metadata).

    Raises:
        ModelError: one line naming the first mismatch.
    """
    want = (1, spec.input.height, spec.input.width, spec.input.channels)
    if tuple(input_shape) != want:
        raise ModelError(
            f"{source}: input shape {_shape(input_shape)} does not match {input_from}: "
            f"{want[1]}x{want[2]}x{want[3]} (height x width x channels)"
        )
    if spec.output.layout == "classes":
        if len(output_shapes) != 1 or tuple(output_shapes[0]) != (1, spec.num_classes):
            raise ModelError(
                f"{source}: output tensors {_shapes(output_shapes)} do not match {output_from}: a "
                f"classifier with {spec.num_classes} labels has one (1, {spec.num_classes}) output"
            )
        return
    if spec.output.layout in ANCHOR_FREE_LAYOUTS:
        try:
            scale_order(spec, output_shapes)
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None
        return
    if len(output_shapes) != len(spec.output.strides):
        raise ModelError(
            f"{source}: {len(output_shapes)} output tensors {_shapes(output_shapes)}, but {output_from} "
            f"has {len(spec.output.strides)} scales (strides {spec.output.strides})"
        )
    try:
        scale_order(spec, output_shapes)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None


def _shape(shape: Sequence[int]) -> str:
    return "(" + ",".join(str(int(d)) for d in shape) + ")"


def _shapes(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join(_shape(s) for s in shapes)
