"""The edgecnn metadata entry: written on the workstation, read in pure Python on the board."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edgecnn.errors import ModelError
from edgecnn.quantize.metadata_writer import embed_metadata, embed_spec, write_spec
from edgecnn.runtime.flatbuffer import parse_model
from edgecnn.runtime.metadata import read_metadata, read_spec, read_spec_bytes
from edgecnn.runtime.spec import METADATA_NAME, ModelSpec

pytestmark = pytest.mark.tf


def _outputs(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def test_round_trip_and_litert_still_runs_it(tiny_tflite: dict[str, Path], det_spec: ModelSpec) -> None:
    original = tiny_tflite["det_int8"].read_bytes()
    written = embed_spec(original, det_spec)
    assert read_spec_bytes(written) == det_spec
    x = np.random.default_rng(0).integers(-128, 128, size=(1, 64, 64, 3), dtype=np.int8)
    for got, want in zip(_outputs(written, x), _outputs(original, x), strict=True):
        np.testing.assert_array_equal(got, want)
    # The entry is what docs/runtime.md says: Model.metadata "edgecnn" -> a buffer of UTF-8 JSON.
    parsed = parse_model(written)
    (index,) = [i for name, i in parsed.metadata if name == METADATA_NAME]
    buf = parsed.buffers[index]
    assert json.loads(written[buf.start : buf.start + buf.length].decode("utf-8"))["labels"] == [
        "person",
        "car",
    ]
    assert buf.start % 16 == 0


def test_the_rest_of_the_model_is_unchanged(tiny_tflite: dict[str, Path], det_spec: ModelSpec) -> None:
    original = tiny_tflite["det_float"].read_bytes()
    written = embed_spec(original, det_spec)
    before, after = parse_model(original), parse_model(written)
    assert after.subgraphs == before.subgraphs
    assert after.operator_codes == before.operator_codes
    assert after.signature_keys == before.signature_keys
    assert after.metadata[:-1] == before.metadata
    shift = len(written) - len(original)
    assert shift % 16 == 0 and written[shift:] == original  # old bytes kept, alignment kept
    for old, new in zip(before.buffers, after.buffers, strict=False):
        assert (new.start, new.length) == ((old.start + shift if old.start else 0), old.length)
        assert written[new.start : new.start + new.length] == original[old.start : old.start + old.length]


def test_writing_again_replaces_the_entry(tiny_tflite: dict[str, Path], det_spec: ModelSpec) -> None:
    original = tiny_tflite["det_int8"].read_bytes()
    first = embed_spec(original, det_spec)
    changed = det_spec.model_copy(update={"labels": ["bike", "bus"], "name": "again"})
    second = embed_spec(first, changed)
    assert read_spec_bytes(second) == changed
    names = [name for name, _ in parse_model(second).metadata]
    assert names.count(METADATA_NAME) == 1
    assert names == ["min_runtime_version", "CONVERSION_METADATA", METADATA_NAME]
    assert len(parse_model(second).buffers) == len(parse_model(first).buffers)  # buffer slot reused
    meta = embed_metadata(second, "other", b"\x00\x01")  # other entries are kept
    assert read_spec_bytes(meta) == changed
    assert parse_model(meta).metadata_bytes(meta, "other") == b"\x00\x01"
    assert parse_model(meta).metadata_bytes(meta, "min_runtime_version") == parse_model(
        original
    ).metadata_bytes(original, "min_runtime_version")


def test_write_spec_file_and_read_spec(
    tiny_tflite: dict[str, Path], cls_spec: ModelSpec, tmp_path: Path
) -> None:
    target = write_spec(tiny_tflite["cls_int8"], cls_spec, tmp_path / "with_spec.tflite")
    assert read_spec(target) == cls_spec
    assert read_spec(tiny_tflite["cls_int8"]) is None  # the source is untouched
    assert set(read_metadata(target)) == {"min_runtime_version", "CONVERSION_METADATA", METADATA_NAME}
    in_place = tmp_path / "in_place.tflite"
    in_place.write_bytes(tiny_tflite["cls_int8"].read_bytes())
    write_spec(in_place, cls_spec)
    assert read_spec(in_place) == cls_spec
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_invalid_metadata_is_one_clear_error(tiny_tflite: dict[str, Path], cls_spec: ModelSpec) -> None:
    original = tiny_tflite["cls_int8"].read_bytes()
    cases = {
        b"{not json": "is not valid JSON",
        json.dumps({"task": "classify"}).encode(): "is not a valid model spec: labels: Field required",
        json.dumps({**cls_spec.model_dump(mode="json"), "format_version": 99}).encode(): "format version 99",
        b"\xff\xfe": "is not valid JSON",
    }
    for payload, message in cases.items():
        with pytest.raises(ModelError, match=message) as info:
            read_spec_bytes(embed_metadata(original, METADATA_NAME, payload), "m.tflite")
        assert "\n" not in str(info.value) and str(info.value).startswith("m.tflite: ")


def test_corrupt_input_to_the_writer(tiny_tflite: dict[str, Path], cls_spec: ModelSpec) -> None:
    data = tiny_tflite["cls_int8"].read_bytes()
    with pytest.raises(ModelError, match="cannot add metadata: truncated or corrupt"):
        embed_spec(data[: len(data) // 2], cls_spec)
    with pytest.raises(ModelError, match="cannot add metadata: not a TFLite model"):
        embed_spec(b"\0" * 64, cls_spec)


def test_read_spec_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.tflite: no such file$"):
        read_spec(tmp_path / "missing.tflite")
    with pytest.raises(ModelError, match="is a directory"):
        read_spec(tmp_path)
    (tmp_path / "empty.tflite").write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty\.tflite: empty file \(0 bytes\)$"):
        read_spec(tmp_path / "empty.tflite")


@pytest.mark.parametrize("magic", [b"PK\x03\x04", b"\x89HDF\r\n\x1a\n"], ids=["keras", "h5"])
def test_a_keras_model_where_tflite_is_needed_names_the_conversion(tmp_path: Path, magic: bytes) -> None:
    # `edgecnn run / bench / inspect RUN/model.keras`: say what the file is and how to convert it,
    # not only that it lacks the TFL3 identifier.
    path = tmp_path / "model.keras"
    path.write_bytes(magic + bytes(100))
    with pytest.raises(ModelError) as err:
        read_spec(path)
    assert str(err.value) == (
        f"{path}: a Keras model, not TFLite; convert it first: "
        f"edgecnn quantize {path} --calib CALIB_DIR --out MODEL.tflite"
    )
