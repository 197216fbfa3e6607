"""Ultralytics exports run with no flags: their appended metadata (``metadata.json``, or the
older ``temp_meta.txt``) gives the spec, and malformed metadata is one line, exit 2.

The models are stand-ins built with TensorFlow (``tests/ultralytics_exports.py``): the shapes
and meaning of Ultralytics' heads, constant outputs, the metadata appended as its exporter
appends it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ultralytics_exports as ux
from typer.testing import CliRunner

from edgecnn.bench import bench_model
from edgecnn.cli import app
from edgecnn.errors import ModelError
from edgecnn.postprocess import decode_yolo, filter_detections
from edgecnn.quantize.metadata_writer import embed_spec
from edgecnn.runtime.interpreter import TFLiteModel
from edgecnn.runtime.metadata import carried_spec, parse_model_file
from edgecnn.runtime.resolve import anchor_free_layout, resolve_file_spec
from edgecnn.runtime.ultralytics import MAX_METADATA_BYTES, spec_from_document

runner = CliRunner()


# -- the spec the metadata gives ---------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.parametrize(("name", "member"), [("v8", "metadata.json"), ("v8_pixels", "temp_meta.txt")])
def test_both_metadata_styles_give_the_spec(
    ultralytics_models: dict[str, Path], name: str, member: str
) -> None:
    path = ultralytics_models[name]
    with path.open("rb") as handle:
        data = handle.read()
    spec, origin = carried_spec(data, parse_model_file(data, str(path)), str(path))
    assert origin == f"Ultralytics metadata ({member})"
    assert spec is not None and spec.task == "detect" and spec.labels == ux.LABELS
    inp = spec.input
    assert (inp.width, inp.height, inp.channels, inp.color_order) == (64, 64, 3, "RGB")
    assert (inp.resize, inp.pad_value, inp.mean, inp.std) == ("letterbox", 114, (0, 0, 0), (255, 255, 255))
    assert (spec.output.layout, spec.output.class_activation) == ("yolo_v8", "none")
    assert spec.thresholds.model_dump() == {"conf": 0.25, "iou": 0.7, "max_det": 300}
    assert spec.created_by == "Ultralytics 8.3.200" and spec.name == name


@pytest.mark.parametrize(
    ("shape", "names", "end2end", "nms", "layout"),
    [
        ((1, 84, 8400), 80, False, False, "yolo_v8"),
        ((1, 8400, 84), 80, None, None, "yolo_v8"),  # transposed (onnx2tf)
        ((1, 300, 6), 80, True, False, "yolo_end2end"),  # YOLO26, YOLOv10
        ((1, 300, 6), 80, None, None, "yolo_end2end"),  # older metadata without end2end
        ((1, 6, 8400), 2, None, None, "yolo_v8"),
        # two classes: (1, K, 6) fits both layouts; the metadata decides, else Ultralytics' rule
        ((1, 8400, 6), 2, False, False, "yolo_v8"),
        ((1, 300, 6), 2, False, True, "yolo_end2end"),  # nms=True export
        ((1, 300, 6), 2, True, None, "yolo_end2end"),
        ((1, 300, 6), 2, None, None, "yolo_end2end"),
        ((1, 84, 8400), 80, True, False, None),  # says end-to-end, is not
        ((1, 300, 6), 80, False, False, None),  # says not, is
        ((1, 85, 8400), 80, None, None, None),
    ],
)
def test_layout_from_the_output_shape(
    shape: tuple[int, ...], names: int, end2end: bool | None, nms: bool | None, layout: str | None
) -> None:
    document = ux.metadata(names=dict(enumerate(f"c{i}" for i in range(names))))
    for key, value in (("end2end", end2end), ("nms", nms)):
        (document if key == "end2end" else document["args"]).pop(key)
        if value is not None:
            (document if key == "end2end" else document["args"])[key] = value
    if layout is None:
        with pytest.raises(ModelError, match=r"^m.tflite: output tensors .* do not fit its Ultralytics"):
            spec_from_document(document, [(1, 64, 64, 3)], [shape], "m.tflite")
    else:
        spec = spec_from_document(document, [(1, 64, 64, 3)], [shape], "m.tflite")
        assert spec.output.layout == layout
    known = True if end2end or nms else False if end2end is False else None
    assert anchor_free_layout(shape, names, known) == layout


def test_a_classifier_and_a_very_old_export_without_task() -> None:
    spec = spec_from_document(ux.metadata(task="classify"), [(1, 64, 64, 3)], [(1, 3)], "cls.tflite")
    assert (spec.task, spec.output.layout, spec.output.class_activation) == ("classify", "classes", "none")
    document = ux.metadata()
    del document["task"], document["args"], document["end2end"], document["imgsz"]
    assert spec_from_document(document, [(1, 64, 64, 3)], [(1, 3)], "m").task == "classify"
    assert spec_from_document(document, [(1, 32, 48, 1)], [(1, 7, 84)], "m").output.layout == "yolo_v8"


# -- malformed metadata: one line, exit 2 -------------------------------------------------------


def _archive(model: bytes, member: str, text: str | bytes) -> bytes:
    buffer = io.BytesIO(model)
    buffer.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return buffer.getvalue()


def _with(**changes: Any) -> str:
    return json.dumps(ux.metadata(**changes))


def _lying_size(model: bytes) -> bytes:
    """A member that says it is 100 bytes and inflates to 2 MiB (a zip bomb's trick)."""
    data = bytearray(_archive(model, "metadata.json", " " * (2 << 20)))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    return bytes(data)


def _flip_member_byte(model: bytes) -> bytes:
    data = bytearray(_archive(model, "metadata.json", _with()))
    data[len(model) + 30 + len("metadata.json") + 20] ^= 0xFF  # inside the compressed text
    return bytes(data)


BAD_METADATA: dict[str, tuple[Any, str]] = {
    # case: (model bytes -> damaged bytes, the message after "edgecnn: error: M: ")
    "truncated archive": (
        lambda m: _archive(m, "metadata.json", _with())[:-30],
        "the Ultralytics metadata archive is truncated or corrupt",
    ),
    "archive cut in the member": (
        lambda m: _archive(m, "metadata.json", _with())[: len(m) + 60],
        "the Ultralytics metadata archive is truncated or corrupt",
    ),
    "damaged member": (_flip_member_byte, r"Ultralytics metadata \(metadata.json\): the archive is corrupt"),
    "not JSON": (
        lambda m: _archive(m, "metadata.json", str(ux.metadata())),  # a Python literal
        r"Ultralytics metadata \(metadata.json\) is not valid JSON",
    ),
    "not UTF-8": (lambda m: _archive(m, "metadata.json", b"\xff\xfe{}"), "is not UTF-8 text"),
    "JSON not a mapping": (lambda m: _archive(m, "metadata.json", "[1, 2]"), "is not a mapping of settings"),
    "deeply nested JSON": (lambda m: _archive(m, "metadata.json", "[" * 100_000), "is not valid JSON"),
    "code in temp_meta.txt": (
        lambda m: _archive(m, "temp_meta.txt", "__import__('os').system('touch EVALED')"),
        r"Ultralytics metadata \(temp_meta.txt\) is not a valid Python literal",
    ),
    "deeply nested literal": (lambda m: _archive(m, "temp_meta.txt", "(" * 100_000), "not a valid Python"),
    "names a list": (
        lambda m: _archive(m, "metadata.json", _with(names=["person", "car", "dog"])),
        r"names must be a mapping of class id to name, got list \['person', 'car', 'dog'\]",
    ),
    "names key not an id": (
        lambda m: _archive(m, "metadata.json", _with(names={"person": "person"})),
        "names has key 'person'; class ids are 0, 1, 2, ...",
    ),
    "names with a gap": (
        lambda m: _archive(m, "metadata.json", _with(names={"0": "a", "2": "b"})),
        "names must have the class ids 0..N-1",
    ),
    "name not a string": (
        lambda m: _archive(m, "metadata.json", _with(names={"0": 5})),
        r"names\[0\] must be a printable string, got int 5",
    ),
    "name with a line break": (
        lambda m: _archive(m, "metadata.json", _with(names={"0": "a\nb", "1": "car", "2": "dog"})),
        r"names\[0\] must be a printable string, got str 'a\\nb'",
    ),
    "unknown task": (
        lambda m: _archive(m, "metadata.json", _with(task="x" * 1000)),
        r"unknown task 'x+\.\.\.x+'; edgecnn runs detect and classify models$",
    ),
    "imgsz a string": (
        lambda m: _archive(m, "metadata.json", _with(imgsz="64")),
        r"imgsz must be \[height, width\] in pixels, got str '64'",
    ),
    "imgsz one number in a list": (
        lambda m: _archive(m, "metadata.json", _with(imgsz=[64])),
        "imgsz must be",
    ),
    "imgsz not the input": (
        lambda m: _archive(m, "metadata.json", _with(imgsz=[640, 640])),
        r"imgsz \[640, 640\] \(height, width\) does not match the input tensor \(1,64,64,3\)",
    ),
    "task not a string": (lambda m: _archive(m, "metadata.json", _with(task=1)), "task must be a string"),
    "end2end not a boolean": (
        lambda m: _archive(m, "metadata.json", _with(end2end="yes")),
        "end2end must be true or false",
    ),
    "huge member": (
        lambda m: _archive(m, "metadata.json", _with(description=" " * MAX_METADATA_BYTES)),
        r"Ultralytics metadata \(metadata.json\) is \d+ bytes; edgecnn reads at most 1048576",
    ),
    "member larger than it says": (_lying_size, r"the archive is corrupt \(Bad CRC-32"),
    "names that do not fit the output": (
        lambda m: _archive(m, "metadata.json", _with(names={"0": "a", "1": "b"})),
        r"output tensors \(1,7,84\) do not fit its Ultralytics metadata: a detector with 2 names",
    ),
}


@pytest.mark.tf
@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_malformed_metadata_is_one_line_exit_2(
    ultralytics_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    damage, message = BAD_METADATA[case]
    path = tmp_path / "m.tflite"
    path.write_bytes(damage(ultralytics_models["plain"].read_bytes()))
    monkeypatch.chdir(tmp_path)  # where an eval'ed "touch EVALED" would leave its file
    result = runner.invoke(app, ["inspect", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"edgecnn: error: {path}"), result.output
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "EVALED").exists()


@pytest.mark.tf
@pytest.mark.parametrize("task", ["pose", "segment", "obb"])
def test_other_tasks_are_refused_by_name(
    ultralytics_models: dict[str, Path], tmp_path: Path, task: str
) -> None:
    path = tmp_path / "pose.tflite"
    path.write_bytes(ux.append_metadata(ultralytics_models["plain"].read_bytes(), ux.metadata(task=task)))
    result = runner.invoke(app, ["inspect", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output == (
        f"edgecnn: error: {path} is an Ultralytics {task} model; edgecnn runs detect and classify models\n"
    )


@pytest.mark.tf
def test_another_tools_metadata_json_is_not_ultralytics_metadata(
    ultralytics_models: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "other.tflite"
    path.write_bytes(_archive(ultralytics_models["plain"].read_bytes(), "metadata.json", '{"labels": 3}'))
    result = runner.invoke(app, ["inspect", str(path)], catch_exceptions=False)
    assert result.exit_code == 0 and "spec     no edgecnn metadata\n" in result.output


# -- inspect, TFLiteModel, bench, flags ---------------------------------------------------------


@pytest.mark.tf
def test_inspect_says_the_settings_came_from_ultralytics_metadata(
    ultralytics_models: dict[str, Path],
) -> None:
    result = runner.invoke(app, ["inspect", str(ultralytics_models["e2e_int8"])], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "spec     no edgecnn metadata; from Ultralytics metadata (metadata.json)" in out
    assert "task detect, 3 labels: person, car, dog" in out and "created by Ultralytics 8.3.200" in out
    assert "output yolo_end2end, class activation none" in out
    assert "output 0 (1,10,6): rows x1,y1,x2,y2,score,class (NMS included)" in out
    assert "thresholds conf 0.25 iou 0.7 max_det 300" in out
    result = runner.invoke(app, ["inspect", "--json", str(ultralytics_models["v8_pixels"])])
    document = json.loads(result.output)
    assert document["spec_origin"] == "Ultralytics metadata (temp_meta.txt)"
    assert document["spec"]["output"]["layout"] == "yolo_v8"


@pytest.mark.tf
def test_tflite_model_and_bench_take_the_spec_without_flags(ultralytics_models: dict[str, Path]) -> None:
    model = TFLiteModel(ultralytics_models["v8_int8"])
    assert model.spec is not None and model.spec.output.layout == "yolo_v8" and model.scale_order == [0]
    frame = np.full((48, 64, 3), 90, np.uint8)
    outputs, _ = model.run_frame(frame)
    spec = model.spec
    boxes, scores = decode_yolo(outputs, spec.output, 64, 64, 3, min_objectness=spec.thresholds.conf)
    kept = filter_detections(boxes, scores, conf=0.25, iou=0.7)
    want = np.array([d[2:] for d in ux.EXPECTED_DETECTIONS], np.float32)
    np.testing.assert_allclose(kept.boxes, want, atol=0.25)  # int8 output: steps of 0.0037 x 64 px
    assert kept.class_ids.tolist() == [0, 2]

    result = bench_model(ultralytics_models["e2e"], threads=[1], runs=2, warmup=0)
    assert result.task == "detect" and result.frame_size is not None  # the full per-frame path


@pytest.mark.tf
def test_flags_override_the_metadata_and_edgecnn_metadata_wins(
    ultralytics_models: dict[str, Path], tmp_path: Path
) -> None:
    path = ultralytics_models["v8"]
    spec = resolve_file_spec(path, {"labels": "a,b,c", "conf": 0.5, "pad_value": 0})
    assert spec.labels == ["a", "b", "c"] and spec.output.layout == "yolo_v8"
    assert (spec.thresholds.conf, spec.thresholds.iou, spec.input.pad_value) == (0.5, 0.7, 0)

    both = tmp_path / "both.tflite"  # edgecnn metadata written into an Ultralytics export
    both.write_bytes(embed_spec(path.read_bytes(), spec.model_copy(update={"name": "mine"})))
    data = both.read_bytes()
    embedded, origin = carried_spec(data, parse_model_file(data, "both"), "both")
    assert origin == "edgecnn metadata" and embedded is not None and embedded.name == "mine"
