"""resolve_spec: metadata and flags merged, defaults from the model's tensors, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.errors import ConfigError, ModelError
from edgecnn.runtime.resolve import (
    check_spec_matches_model,
    load_labels,
    parse_anchors,
    parse_imgsz,
    resolve_spec,
    scale_order,
)
from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec

DET_INPUT = (1, 64, 64, 3)
DET_OUTPUTS = [(1, 4, 4, 14), (1, 8, 8, 14)]  # TFLite order: stride 16 first


@pytest.fixture
def embedded() -> ModelSpec:
    return ModelSpec(
        name="det",
        task="detect",
        labels=["person", "car"],
        input=InputSpec(width=64, height=64, mean=(1.0, 2.0, 3.0)),
        output=OutputSpec(
            layout="yolo_v3", anchors=[[(10, 14), (23, 27)], [(37, 58), (81, 82)]], strides=[8, 16]
        ),
    )


def test_missing_metadata_names_the_flags() -> None:
    with pytest.raises(
        ModelError,
        match=r"^model\.tflite has no edgecnn or Ultralytics metadata \(Ultralytics exports run as they "
        r"come\): pass --task and --labels$",
    ):
        resolve_spec(None, input_shape=(1, 32, 32, 3), source="model.tflite")
    with pytest.raises(ModelError, match=r"no edgecnn or Ultralytics metadata .*: pass --labels$"):
        resolve_spec(None, task="classify", input_shape=(1, 32, 32, 3))
    with pytest.raises(ModelError, match=r"pass --labels and --anchors$"):
        resolve_spec(None, task="detect", input_shape=DET_INPUT)
    with pytest.raises(ModelError, match=r"pass --task, --labels and --imgsz$"):
        resolve_spec(None)


def test_classifier_from_flags_only(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\n\n dog \nbird\n")
    spec = resolve_spec(
        None, task="classify", labels=labels, input_shape=(1, 32, 48, 3), output_shapes=[(1, 3)]
    )
    assert spec.labels == ["cat", "dog", "bird"]
    assert (spec.input.width, spec.input.height, spec.input.channels) == (48, 32, 3)
    assert spec.output.layout == "classes" and spec.output.class_activation == "softmax"
    assert spec.input.mean == (0.0, 0.0, 0.0) and spec.input.std == (255.0, 255.0, 255.0)
    with pytest.raises(ModelError, match=r"output tensors \(1,3\) do not match .* 2 labels"):
        resolve_spec(None, task="classify", labels="a,b", input_shape=(1, 32, 48, 3), output_shapes=[(1, 3)])


def test_grey_classifier_gets_one_channel_defaults() -> None:
    spec = resolve_spec(None, task="classify", labels=["0", "1"], input_shape=(1, 28, 28, 1))
    assert spec.input.channels == 1 and spec.input.mean == (0.0,) and spec.input.std == (255.0,)


def test_detector_from_flags_infers_strides_from_outputs() -> None:
    spec = resolve_spec(
        None,
        task="detect",
        labels="person,car",
        anchors="10,14 23,27; 37,58 81,82",
        input_shape=DET_INPUT,
        output_shapes=DET_OUTPUTS,
    )
    assert spec.output.strides == [8, 16]
    assert spec.output.anchors == [[(10.0, 14.0), (23.0, 27.0)], [(37.0, 58.0), (81.0, 82.0)]]
    assert (spec.output.layout, spec.output.class_activation) == ("yolo_v3", "sigmoid")
    assert scale_order(spec, DET_OUTPUTS) == [1, 0]
    with pytest.raises(
        ModelError, match=r"stride 8 needs a \(1,8,8,21\) tensor \(3 anchors x \(5 \+ 2 classes\)"
    ):
        resolve_spec(
            None,
            task="detect",
            labels="person,car",
            anchors="1,1 2,2 3,3; 4,4 5,5 6,6",
            input_shape=DET_INPUT,
            output_shapes=DET_OUTPUTS,
        )
    with pytest.raises(ModelError, match="pass --strides"):
        resolve_spec(None, task="detect", labels="a,", anchors="1,1", input_shape=DET_INPUT)


def test_flags_override_metadata(embedded: ModelSpec) -> None:
    spec = resolve_spec(
        embedded,
        conf=0.6,
        labels=["a", "b"],
        color_order="BGR",
        input_shape=DET_INPUT,
        output_shapes=DET_OUTPUTS,
    )
    assert spec.thresholds.conf == 0.6 and spec.thresholds.iou == embedded.thresholds.iou
    assert spec.labels == ["a", "b"] and spec.input.color_order == "BGR"
    assert spec.input.mean == (1.0, 2.0, 3.0) and spec.output == embedded.output  # the rest is kept
    assert resolve_spec(embedded) == embedded
    spec = resolve_spec(embedded, imgsz="128x96", mean="0", std=[1, 2, 3])
    assert (spec.input.width, spec.input.height, spec.input.mean, spec.input.std) == (
        128,
        96,
        (0.0,),
        (1.0, 2.0, 3.0),
    )
    with pytest.raises(
        ModelError, match=r"input shape \(1,64,64,3\) does not match --imgsz 128x96: 96x128x3"
    ):
        resolve_spec(embedded, imgsz="128x96", input_shape=DET_INPUT, output_shapes=DET_OUTPUTS)


def test_invalid_flag_values(embedded: ModelSpec) -> None:
    with pytest.raises(ConfigError, match=r"invalid model settings: input\.color_order"):
        resolve_spec(embedded, color_order="XYZ")
    with pytest.raises(ConfigError, match=r"invalid model settings: thresholds\.conf"):
        resolve_spec(embedded, conf=1.5)
    with pytest.raises(ConfigError, match="expected N or WIDTHxHEIGHT"):
        parse_imgsz("12x")
    with pytest.raises(ConfigError, match="expected 'w,h w,h"):
        parse_anchors("10,14,3")
    with pytest.raises(ConfigError, match=r"no such file; pass a labels\.txt path or a comma-separated list"):
        load_labels("labels.txt")


def test_parsers() -> None:
    assert (
        parse_imgsz(96) == (96, 96) and parse_imgsz("96") == (96, 96) and parse_imgsz([128, 96]) == (128, 96)
    )
    assert parse_anchors([[(1, 2)], [[3, 4], [5, 6]]]) == [[(1.0, 2.0)], [(3.0, 4.0), (5.0, 6.0)]]
    assert load_labels("person,") == ["person"]


def test_check_spec_counts_outputs(embedded: ModelSpec) -> None:
    with pytest.raises(
        ModelError, match=r"m: 1 output tensors \(1,8,8,14\), but the edgecnn metadata has 2 scales"
    ):
        check_spec_matches_model(embedded, DET_INPUT, DET_OUTPUTS[1:], "m")
    check_spec_matches_model(embedded, DET_INPUT, DET_OUTPUTS[::-1], "m")  # any order


def test_xy_scale_for_models_from_elsewhere(embedded: ModelSpec, tmp_path: Path) -> None:
    flags = {"task": "detect", "labels": "person,car", "anchors": "10,14 23,27; 37,58 81,82"}
    shapes = {"input_shape": DET_INPUT, "output_shapes": DET_OUTPUTS}
    assert resolve_spec(None, **flags, **shapes).output.xy_scale == 1.0  # classic YOLOv2/v3 decoding
    assert resolve_spec(None, **flags, xy_scale=2.0, **shapes).output.xy_scale == 2.0
    assert resolve_spec(embedded, xy_scale=1.05).output.xy_scale == 1.05
    with pytest.raises(ConfigError, match=r"invalid model settings: output\.xy_scale"):
        resolve_spec(embedded, xy_scale=0.5)
    # The device config passes it on, like the other settings for models without metadata.
    from edgecnn.config.device import load_device_config

    config = tmp_path / "device.yaml"
    config.write_text("model: {path: m.tflite, xy_scale: 2.0}\nsource: {type: opencv, input: 0}\n")
    assert load_device_config(config).model.spec_overrides() == {"xy_scale": 2.0}
