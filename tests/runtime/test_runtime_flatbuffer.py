"""The pure-Python TFLite reader: agrees with the interpreter, rejects damaged files cleanly."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edgecnn.runtime.flatbuffer import FlatbufferError, parse_model, root_table


def _details(path: Path) -> tuple[list[dict], list[dict]]:
    interpreter = Interpreter(model_path=str(path))
    return interpreter.get_input_details(), interpreter.get_output_details()


@pytest.mark.tf
@pytest.mark.parametrize("name", ["cls_float", "cls_int8", "det_int8", "det_uint8"])
def test_tensors_match_the_interpreter(tiny_tflite: dict[str, Path], name: str) -> None:
    path = tiny_tflite[name]
    parsed = parse_model(path.read_bytes())
    inputs, outputs = _details(path)
    ours = parsed.main.input_tensors + parsed.main.output_tensors
    for desc, details in zip(ours, inputs + outputs, strict=True):
        assert desc.name == details["name"]
        assert desc.index == details["index"]
        assert desc.shape == tuple(details["shape"])
        assert desc.dtype == np.dtype(details["dtype"]).name
        scale, zero_point = details["quantization"]
        assert desc.scales == ((np.float32(scale),) if scale else ())
        assert desc.zero_points == ((zero_point,) if scale else ())
    assert parsed.version == 3
    assert [name for name, _ in parsed.metadata] == ["min_runtime_version", "CONVERSION_METADATA"]
    assert 3 in [code.builtin_code for code in parsed.operator_codes]  # CONV_2D in schema.fbs
    assert parsed.size == path.stat().st_size


@pytest.mark.tf
def test_every_truncation_is_rejected(tiny_tflite: dict[str, Path]) -> None:
    data = tiny_tflite["det_int8"].read_bytes()
    lengths = sorted({*range(0, len(data), 97), 1, 7, 8, 9, 16, len(data) // 2, len(data) - 1})
    for length in lengths:
        with pytest.raises(FlatbufferError) as info:
            parse_model(data[:length])
        message = str(info.value)
        assert "\n" not in message
        if length >= 8:
            assert info.value.truncated and f"end of the file ({length} bytes)" in message


def test_small_and_foreign_files() -> None:
    with pytest.raises(FlatbufferError, match=r"^empty file \(0 bytes\)$"):
        parse_model(b"")
    with pytest.raises(FlatbufferError, match=r"too short to be a TFLite model \(5 bytes\)"):
        parse_model(b"\x18\x00\x00\x00T")
    with pytest.raises(FlatbufferError, match=r"^not a TFLite model \(no TFL3 identifier\)$"):
        parse_model(np.random.default_rng(0).bytes(4096))
    with pytest.raises(FlatbufferError, match=r"^not a TFLite model"):
        parse_model(b"PK\x03\x04" + bytes(100))  # a zip, e.g. a Keras file
    with pytest.raises(
        FlatbufferError,
        match=r"the Model table \(bytes 24\.\.28\) extends past the end of the "
        r"file \(8 bytes\)",
    ):
        parse_model(b"\x18\x00\x00\x00TFL3")


@pytest.mark.tf
def test_out_of_range_indices_are_corrupt(tiny_tflite: dict[str, Path]) -> None:
    data = bytearray(tiny_tflite["det_int8"].read_bytes())
    model = root_table(bytes(data))
    subgraph = model.tables(2, "subgraph")[0]
    tensor = subgraph.tables(0, "tensor")[1]
    pos = tensor.field_pos(2, 4)  # Tensor.buffer
    struct.pack_into("<I", data, pos, 9999)
    with pytest.raises(
        FlatbufferError,
        match=r"^corrupt: subgraph 0 tensor 1 refers to buffer 9999, but there are "
        r"only \d+$",
    ):
        parse_model(bytes(data))


@pytest.mark.tf
def test_random_damage_never_escapes_as_another_exception(tiny_tflite: dict[str, Path]) -> None:
    """Fuzz: flipped bytes either still parse or raise FlatbufferError, never IndexError & co."""
    original = tiny_tflite["cls_int8"].read_bytes()
    rng = np.random.default_rng(42)
    outcomes = {"parsed": 0, "rejected": 0}
    for _ in range(300):
        data = bytearray(original)
        for pos in rng.integers(0, min(len(data), 2048), size=rng.integers(1, 6)):
            data[pos] = rng.integers(0, 256)
        try:
            parse_model(bytes(data))
            outcomes["parsed"] += 1
        except FlatbufferError:
            outcomes["rejected"] += 1
    for _ in range(100):  # random bodies behind a valid header
        data = b"\x10\x00\x00\x00TFL3" + rng.bytes(int(rng.integers(0, 400)))
        with pytest.raises(FlatbufferError):
            parse_model(data)
    assert outcomes["rejected"] > 0 and sum(outcomes.values()) == 300
