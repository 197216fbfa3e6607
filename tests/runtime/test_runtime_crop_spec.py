"""``resize: crop`` in the model spec: classifiers only; Ultralytics classifiers get it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec
from edgecnn.runtime.ultralytics import spec_from_document


def test_crop_is_for_classifiers_only() -> None:
    crop = InputSpec(width=32, height=32, resize="crop")
    spec = ModelSpec(task="classify", labels=["a", "b"], input=crop, output=OutputSpec(layout="classes"))
    assert ModelSpec.from_json(spec.to_json()).input.resize == "crop"
    with pytest.raises(ValidationError, match="resize 'crop' is for classifiers"):
        ModelSpec(
            task="detect",
            labels=["a"],
            input=crop,
            output=OutputSpec(layout="yolo_v8"),
        )


def test_ultralytics_classifiers_are_centre_cropped_and_detectors_letterboxed() -> None:
    document = {"task": "classify", "names": {"0": "cat", "1": "dog"}, "imgsz": [64, 64]}
    spec = spec_from_document(document, [(1, 64, 64, 3)], [(1, 2)], "cls.tflite")
    assert (spec.task, spec.input.resize) == ("classify", "crop")
    document = {"task": "detect", "names": {"0": "cat", "1": "dog"}, "imgsz": [64, 64]}
    spec = spec_from_document(document, [(1, 64, 64, 3)], [(1, 6, 84)], "det.tflite")
    assert (spec.task, spec.input.resize) == ("detect", "letterbox")
