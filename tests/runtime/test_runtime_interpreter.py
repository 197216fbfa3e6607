"""TFLiteModel: float in, float out, whatever the tensor types; the (de)quantisation arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecnn.errors import ConfigError, ModelError
from edgecnn.runtime.interpreter import (
    TensorInfo,
    TFLiteModel,
    dequantize,
    dequantize_tensor,
    quantize_tensor,
)
from edgecnn.runtime.preprocessing import preprocess, quantize
from edgecnn.runtime.spec import InputSpec, ModelSpec


def test_quantize_by_hand() -> None:
    x = np.array([0.0, 0.25, 0.75, 1.0, 100.0, -100.0, -0.26], dtype=np.float32)
    # x / 0.5 = 0, 0.5, 1.5, 2, 200, -200, -0.52 -> rint (halves to even) 0, 0, 2, 2, 200, -200, -1
    # + zero point -3, clipped to -128..127:
    q = quantize(x, 0.5, -3, "int8")
    assert q.dtype == np.int8
    assert q.tolist() == [-3, -3, -1, -1, 127, -128, -4]
    # uint8, scale 0.1, zero point 128: 1.0 -> 138; -12.8 -> 0; 12.7 -> 255; +-13 clip to 255 / 0.
    q = quantize(np.array([0.0, 1.0, -12.8, 12.7, 13.0, -13.0]), 0.1, 128, np.uint8)
    assert q.dtype == np.uint8
    assert q.tolist() == [128, 138, 0, 255, 255, 0]
    with pytest.raises(ValueError, match="cannot quantise to int32"):
        quantize(x, 1.0, 0, "int32")


def test_dequantize_by_hand() -> None:
    got = dequantize(np.array([-128, 0, 127], dtype=np.int8), 0.5, -3)
    assert got.dtype == np.float32
    assert got.tolist() == [-62.5, 1.5, 65.0]  # 0.5 * (q + 3)
    got = dequantize(np.array([0, 128, 255], dtype=np.uint8), 0.25, 128)
    assert got.tolist() == [-32.0, 0.0, 31.75]


def test_uint8_tensor_from_interpreter_details() -> None:
    details: dict[str, Any] = {
        "name": "input",
        "index": 7,
        "shape": np.array([1, 2, 2, 1], dtype=np.int32),
        "dtype": np.uint8,
        "quantization": (0.02, 100),
        "quantization_parameters": {
            "scales": np.array([0.02], dtype=np.float32),
            "zero_points": np.array([100], dtype=np.int32),
            "quantized_dimension": 0,
        },
    }
    info = TensorInfo.from_details(details)
    assert (info.index, info.shape, info.dtype, info.zero_point) == (7, (1, 2, 2, 1), "uint8", 100)
    assert info.scale == pytest.approx(0.02) and info.quantized
    x = np.array([-2.0, 0.0, 0.5, 3.1], dtype=np.float32).reshape(1, 2, 2, 1)
    raw = quantize_tensor(x, info)
    assert raw.dtype == np.uint8 and raw.ravel().tolist() == [0, 100, 125, 255]  # -2 -> 0, 3.1 -> 255
    assert dequantize_tensor(raw, info).ravel().tolist() == pytest.approx([-2.0, 0.0, 0.5, 3.1])
    per_channel = {**details, "quantization_parameters": {"scales": np.ones(3), "zero_points": np.zeros(3)}}
    with pytest.raises(ModelError, match="quantised per channel"):
        TensorInfo.from_details(per_channel)
    float_info = TensorInfo.from_details({**details, "dtype": np.float32, "quantization_parameters": {}})
    assert not float_info.quantized
    np.testing.assert_array_equal(quantize_tensor(x, float_info), x)


def _inputs(seed: int, shape: tuple[int, ...], count: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *shape[1:]), dtype=np.float32)


@pytest.mark.tf
def test_float_model_matches_keras(tiny_tflite: dict[str, Path], tiny_keras: dict[str, Any]) -> None:
    model = TFLiteModel(tiny_tflite["det_float"], num_threads=2)
    assert model.backend == "ai_edge_litert"
    assert (model.input_shape, model.input_dtype) == ((1, 64, 64, 3), np.dtype("float32"))
    x = _inputs(0, model.input_shape, 1)
    keras_out = [np.asarray(t) for t in tiny_keras["det"](x)]  # [stride 8, stride 16]
    outputs = model.run(x)
    assert [o.dtype for o in outputs] == [np.float32, np.float32]
    assert [o.shape for o in outputs] == model.output_shapes
    by_shape = {o.shape: o for o in outputs}
    for want in keras_out:
        np.testing.assert_allclose(by_shape[want.shape], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model.run(x[0])[0], outputs[0])  # batch axis optional
    with pytest.raises(ValueError, match=r"does not fit the model input \(1, 64, 64, 3\)"):
        model.run(np.zeros((1, 32, 32, 3), np.float32))


@pytest.mark.tf
@pytest.mark.parametrize("kind", ["cls", "det"])
def test_int8_outputs_match_float_within_quantisation_error(tiny_tflite: dict[str, Path], kind: str) -> None:
    float_model = TFLiteModel(tiny_tflite[f"{kind}_float"])
    int8_model = TFLiteModel(tiny_tflite[f"{kind}_int8"])
    assert int8_model.input_dtype == np.int8 and all(o.dtype == "int8" for o in int8_model.outputs)
    for x in _inputs(1, float_model.input_shape):
        want = float_model.run(x)
        got = int8_model.run(x)
        for g, w, info in zip(got, want, int8_model.outputs, strict=True):
            assert g.dtype == np.float32 and g.shape == w.shape
            error = np.abs(g - w)
            # A few quantisation steps of the output tensor; each layer rounds once.
            assert error.max() <= 6 * info.scale, (error.max(), info.scale)
            # ... and far below the spread of the values (a wrong zero point or a missing
            # dequantisation would break this).
            assert error.mean() < 0.1 * np.abs(w - w.mean()).mean()


@pytest.mark.tf
@pytest.mark.parametrize("kind", ["cls", "det"])
def test_uint8_model_gives_the_int8_results(tiny_tflite: dict[str, Path], kind: str) -> None:
    """The converter's uint8 interface only adds QUANTIZE ops (a shift by 128) around the
    same int8 graph: after dequantisation both must agree to the last step."""
    int8_model = TFLiteModel(tiny_tflite[f"{kind}_int8"])
    uint8_model = TFLiteModel(tiny_tflite[f"{kind}_uint8"])
    assert uint8_model.input_dtype == np.uint8
    assert uint8_model.input.zero_point == int8_model.input.zero_point + 128
    for x in _inputs(2, int8_model.input_shape):
        for a, b, info in zip(uint8_model.run(x), int8_model.run(x), uint8_model.outputs, strict=True):
            assert np.abs(a - b).max() <= info.scale * 1.001


@pytest.mark.tf
def test_raw_path_for_benchmarks(tiny_tflite: dict[str, Path]) -> None:
    model = TFLiteModel(tiny_tflite["cls_int8"], num_threads=1)
    x = _inputs(4, model.input_shape, 1)
    raw_in = quantize(x, model.input.scale, model.input.zero_point, "int8")
    model.invoke_raw(raw_in)
    raw = model.outputs_raw()
    assert [r.dtype for r in raw] == [np.int8]
    np.testing.assert_array_equal(
        model.outputs_float()[0], dequantize(raw[0], model.outputs[0].scale, model.outputs[0].zero_point)
    )
    np.testing.assert_array_equal(model.run(x)[0], model.outputs_float()[0])
    model.invoke_raw()  # same input again
    np.testing.assert_array_equal(model.outputs_raw()[0], raw[0])


@pytest.mark.tf
@pytest.mark.parametrize("name", ["det_float", "det_int8", "det_uint8", "cls_int8"])
def test_run_frame_equals_preprocess_then_run(tiny_tflite_spec: dict[str, Path], name: str) -> None:
    model = TFLiteModel(tiny_tflite_spec[name])
    assert model.spec is not None and model.spec.input.width == model.input_shape[2]
    frame = np.random.default_rng(5).integers(0, 256, size=(48, 80, 3), dtype=np.uint8)
    outputs, box_map = model.run_frame(frame)
    tensor, want_map = preprocess(frame, model.spec.input)
    assert box_map == want_map
    for got, want in zip(outputs, model.run(tensor), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.tf
def test_detector_outputs_are_mapped_to_strides(tiny_tflite_spec: dict[str, Path]) -> None:
    model = TFLiteModel(tiny_tflite_spec["det_int8"])
    order = model.scale_order
    assert [model.output_shapes[i][1] for i in order] == [8, 4]  # stride 8 then 16 on a 64 px input


@pytest.mark.tf
def test_spec_problems(tiny_tflite: dict[str, Path], cls_spec: ModelSpec) -> None:
    model = TFLiteModel(tiny_tflite["cls_int8"])
    assert model.spec is None
    with pytest.raises(ModelError, match=r"no edgecnn or Ultralytics metadata .*: give TFLiteModel a spec"):
        model.run_frame(np.zeros((10, 10, 3), np.uint8))
    wrong = cls_spec.model_copy(update={"input": InputSpec(width=48, height=48)})
    with pytest.raises(
        ModelError, match=r"input shape \(1,32,32,3\) does not match the edgecnn metadata: 48x48x3"
    ):
        TFLiteModel(tiny_tflite["cls_int8"], spec=wrong)
    model = TFLiteModel(tiny_tflite["cls_int8"], spec=cls_spec)
    outputs, _ = model.run_frame(np.zeros((10, 10, 3), np.uint8))
    assert outputs[0].shape == (1, 3)


def test_loading_errors_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        TFLiteModel(tmp_path / "nope.tflite")
    (tmp_path / "bad.tflite").write_bytes(b"\x18\x00\x00\x00TFL3")
    with pytest.raises(ModelError, match="truncated or corrupt"):
        TFLiteModel(tmp_path / "bad.tflite")


@pytest.mark.parametrize("threads", [0, 65, 100_000])
def test_thread_counts_beyond_the_bounds_are_refused_before_loading(threads: int) -> None:
    """LiteRT segfaulted with 100000 threads; the bounds are those of ``edgecnn run``."""
    with pytest.raises(ConfigError, match=rf"^num_threads must be 1\.\.64, got {threads}$"):
        TFLiteModel("never-read.tflite", num_threads=threads)
