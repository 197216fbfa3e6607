"""The settings a model carries with it: the edgecnn model spec.

The same document travels as ``spec.json`` next to a Keras model and inside the
``.tflite`` file (a flatbuffer metadata entry named ``edgecnn``), so that the model file
alone is enough on a device: preprocessing, labels, output layout, anchors and default
thresholds are read from the model, never re-typed as flags.

Pixel normalisation: the frame is converted to ``input.color_order``, resized (``letterbox``
keeps the aspect ratio and pads with ``input.pad_value``; ``stretch`` does not; ``crop``, for
classifiers, keeps it and cuts the borders: the centre region is resized), then each
channel is mapped ``x = (pixel - mean) / std`` with pixels in 0..255.

Detection outputs (``output.layout`` ``yolo_v2`` or ``yolo_v3``): one raw tensor per scale of
shape ``(1, H, W, A * (5 + C))``; per anchor the channels are ``tx, ty, tw, th, objectness,
class logits...``. ``anchors[i]`` are the ``(w, h)`` pairs, in input pixels, of the scale
with stride ``strides[i]``; strides ascend. ``yolo_v2`` heads use a softmax over classes,
``yolo_v3`` heads a sigmoid per class; confidence = objectness x class probability.
The anchor-free layouts of Ultralytics exports (YOLOv8, YOLO11, YOLO26) are one tensor with the
boxes already decoded, no anchors and no strides: ``yolo_v8`` is ``(1, 4 + C, N)`` (or
``(1, N, 4 + C)``), box ``cx, cy, w, h`` then C class scores per candidate; ``yolo_end2end``
is ``(1, K, 6)``, rows ``x1, y1, x2, y2, score, class id`` (NMS done by the model). Their box
units (fractions of the input or input pixels) are read from the values by
:func:`edgecnn.postprocess.decode.decode_yolo`.
Classification outputs (``output.layout`` ``classes``): one tensor ``(1, C)`` of logits or
probabilities (``output.class_activation``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEC_FORMAT_VERSION = 1
METADATA_NAME = "edgecnn"  # name of the flatbuffer metadata entry inside a .tflite

#: The output layouts (``OutputSpec.layout``).
Layout = Literal["yolo_v2", "yolo_v3", "yolo_v8", "yolo_end2end", "classes"]
#: Layouts with anchors and one output per stride.
ANCHOR_LAYOUTS = ("yolo_v2", "yolo_v3")
#: Layouts of one output with the boxes already decoded: no anchors, no strides.
ANCHOR_FREE_LAYOUTS = ("yolo_v8", "yolo_end2end")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class InputSpec(_Strict):
    """How a camera frame becomes the model's input tensor."""

    width: int = Field(gt=0, le=8192, description="Input width in pixels.")
    height: int = Field(gt=0, le=8192, description="Input height in pixels.")
    channels: Literal[1, 3] = Field(3, description="1 for grey-scale models, 3 for colour.")
    color_order: Literal["RGB", "BGR"] = Field("RGB", description="Channel order the model expects.")
    resize: Literal["letterbox", "stretch", "crop"] = Field(
        "letterbox",
        description="letterbox keeps the aspect ratio and pads; stretch does not; crop keeps it and "
        "cuts the borders (classifiers only).",
    )
    pad_value: int = Field(114, ge=0, le=255, description="Grey level of letterbox padding.")
    mean: tuple[float, ...] = Field((0.0, 0.0, 0.0), description="Per-channel mean, 0..255 units.")
    std: tuple[float, ...] = Field((255.0, 255.0, 255.0), description="Per-channel std, 0..255 units.")

    @model_validator(mode="after")
    def _check_norm(self) -> InputSpec:
        # The defaults are written for colour models; a grey-scale model that does not set
        # them gets the same mapping with one value each.
        for key in ("mean", "std"):
            values = getattr(self, key)
            if key not in self.model_fields_set and len(values) != self.channels:
                values = values[:1]
                setattr(self, key, values)
            if len(values) not in (1, self.channels):
                allowed = "1 value" if self.channels == 1 else f"1 or {self.channels} values"
                raise ValueError(f"{key} needs {allowed}, got {len(values)}")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be > 0")
        return self


class OutputSpec(_Strict):
    """How to read the model's output tensors."""

    layout: Layout = Field(description="Output decoding scheme.")
    anchors: list[list[tuple[float, float]]] = Field(
        default_factory=list, description="Per scale, (w, h) anchor pairs in input pixels."
    )
    strides: list[int] = Field(default_factory=list, description="Per scale stride, ascending.")
    class_activation: Literal["sigmoid", "softmax", "none"] = Field(
        "sigmoid", description="Activation still to apply to class outputs ('none': already probabilities)."
    )
    xy_scale: float = Field(
        1.0,
        ge=1.0,
        le=4.0,
        description=(
            "Centre offset scale (YOLOv4's scale_x_y): centre = (sigmoid(t) * k - (k - 1) / 2 + cell) "
            "* stride, so a cell's boxes reach (k - 1) / 2 cells beyond it. 1: classic YOLOv2/v3."
        ),
    )

    @model_validator(mode="after")
    def _check_yolo(self) -> OutputSpec:
        if self.layout == "classes":
            return self
        if self.layout in ANCHOR_FREE_LAYOUTS:
            if self.anchors or self.strides:
                raise ValueError(f"{self.layout} is anchor-free: it takes no anchors and no strides")
            if self.layout == "yolo_end2end" and self.class_activation == "softmax":
                raise ValueError("yolo_end2end rows hold one score each: class_activation sigmoid or none")
            return self
        if not self.anchors or len(self.anchors) != len(self.strides):
            raise ValueError("yolo layouts need one anchor list per stride")
        if list(self.strides) != sorted(self.strides):
            raise ValueError("strides must ascend")
        if self.layout == "yolo_v2" and len(self.strides) != 1:
            raise ValueError("yolo_v2 heads have exactly one scale")
        return self


class ThresholdSpec(_Strict):
    """Default post-processing thresholds; a device config may override them."""

    conf: float = Field(0.25, ge=0.0, le=1.0, description="Minimum confidence to keep a box.")
    iou: float = Field(0.45, gt=0.0, le=1.0, description="NMS IoU threshold.")
    max_det: int = Field(300, ge=1, le=30000, description="Detections kept per frame after NMS.")


class ModelSpec(_Strict):
    """Everything a device needs to run a model, stored with the model."""

    format_version: int = Field(SPEC_FORMAT_VERSION, description="Version of this document.")
    name: str = Field("model", description="Model name (architecture or run name).")
    task: Literal["detect", "classify"]
    labels: list[str] = Field(min_length=1, description="Class names, index = class id.")
    input: InputSpec
    output: OutputSpec
    thresholds: ThresholdSpec = Field(default_factory=ThresholdSpec)
    created_by: str = Field("", description="Tool and version that wrote the spec.")

    @model_validator(mode="after")
    def _check_task(self) -> ModelSpec:
        if (self.task == "classify") != (self.output.layout == "classes"):
            raise ValueError(f"task {self.task!r} does not match output layout {self.output.layout!r}")
        if self.input.resize == "crop" and self.task != "classify":
            raise ValueError("resize 'crop' is for classifiers: a detector would miss what it cuts off")
        return self

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``labels``)."""
        return len(self.labels)

    def to_json(self) -> str:
        """Serialise to compact, key-sorted JSON (the bytes embedded in a .tflite)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        """Parse and validate a spec document."""
        return cls.model_validate_json(text)

    def save(self, path: str | Path) -> None:
        """Write the spec as indented JSON (``spec.json`` next to a Keras model)."""
        Path(path).write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """Read a ``spec.json`` file."""
        return cls.from_json(Path(path).read_text())
