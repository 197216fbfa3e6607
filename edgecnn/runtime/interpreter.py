"""A ``.tflite`` model in a TFLite interpreter, with float32 in and float32 out.

:class:`TFLiteModel` hides the tensor types: float32 inputs are passed through, int8 and
uint8 inputs are quantised with the tensor's scale and zero point (rounded, clipped to the
type's range), and quantised outputs are dequantised, ``x = scale * (q - zero_point)``.
Per-frame use goes through :meth:`TFLiteModel.run_frame`, which preprocesses as the
model's spec says and, for int8/uint8 inputs, goes straight from pixels to the quantised
tensor (:func:`~edgecnn.runtime.preprocessing.preprocess_quantized`).

Loading runs the interpreter in this process: an untrusted or corrupt file can crash it.
A long-running process should check a model with
:func:`edgecnn.runtime.validate.validate_model` (which loads it in a child process) first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.errors import ConfigError, ModelError
from edgecnn.postprocess.letterbox import Letterbox
from edgecnn.runtime.backend import MAX_THREADS, interpreter_error, load_backend
from edgecnn.runtime.metadata import read_model_spec, read_spec
from edgecnn.runtime.preprocessing import preprocess, preprocess_quantized, quantize
from edgecnn.runtime.resolve import NO_METADATA, check_spec_matches_model, scale_order
from edgecnn.runtime.spec import ModelSpec
from edgecnn.runtime.tensors import QUANTIZED_DTYPES, TensorInfo

_IO_DTYPES = ("float32", *QUANTIZED_DTYPES)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``scale * (q - zero_point)`` in float32."""
    return (np.asarray(q).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def quantize_tensor(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Convert float values to what ``info``'s tensor holds (quantised, or cast to float32)."""
    if info.quantized:
        return quantize(x, info.effective_scale, info.zero_point, info.dtype)
    return np.asarray(x, dtype=info.dtype)


def dequantize_tensor(raw: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Float32 values of ``info``'s tensor content."""
    if info.quantized:
        return dequantize(raw, info.effective_scale, info.zero_point)
    return np.asarray(raw, dtype=np.float32)


class TFLiteModel:
    """A ``.tflite`` model loaded in the first available TFLite interpreter.

    Args:
        path: the ``.tflite`` file.
        num_threads: interpreter threads, 1 to :data:`~edgecnn.runtime.backend.MAX_THREADS`
            (None: the backend's default).
        spec: the model spec; None reads the one the model carries: its edgecnn metadata,
            else its Ultralytics metadata (still None if there is neither; :meth:`run_frame`
            then needs one, see :func:`~edgecnn.runtime.resolve.resolve_spec`).
        backend: force a backend (see :mod:`edgecnn.runtime.backend`); None picks one.

    Example:
        >>> model = TFLiteModel("det.tflite", num_threads=4)
        >>> outputs, box_map = model.run_frame(frame_bgr)

    Raises:
        ModelError: missing or corrupt file, no interpreter, unsupported tensor types, or a
            spec that does not fit the tensors.
        ConfigError: ``num_threads`` out of range.
    """

    def __init__(
        self,
        path: str | Path,
        num_threads: int | None = None,
        spec: ModelSpec | None = None,
        backend: str | None = None,
    ) -> None:
        if num_threads is not None and not 1 <= num_threads <= MAX_THREADS:
            raise ConfigError(f"num_threads must be 1..{MAX_THREADS}, got {num_threads}")
        self.path = Path(path)
        self.num_threads = num_threads
        chosen = load_backend(backend)
        self.backend: str = chosen.name
        # also rejects missing and malformed files, in pure Python
        embedded = read_spec(self.path) if spec is not None else read_model_spec(self.path)
        self.spec: ModelSpec | None = spec if spec is not None else embedded
        try:
            self._interpreter = chosen.load_interpreter(str(self.path), num_threads)
        except Exception as exc:
            raise ModelError(
                f"{self.path}: the TFLite interpreter could not load it: {interpreter_error(exc)}"
            ) from None
        inputs = [TensorInfo.from_details(d) for d in self._interpreter.get_input_details()]
        self.outputs: list[TensorInfo] = [
            TensorInfo.from_details(d) for d in self._interpreter.get_output_details()
        ]
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: {len(inputs)} input tensors; edgecnn models have one image input")
        self.input: TensorInfo = inputs[0]
        for info in (self.input, *self.outputs):
            if info.dtype not in _IO_DTYPES:
                raise ModelError(
                    f"{self.path}: tensor {info.name!r} is {info.dtype}; supported: {', '.join(_IO_DTYPES)}"
                )
        if self.spec is not None:
            check_spec_matches_model(self.spec, self.input_shape, self.output_shapes, str(self.path))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the input tensor, ``(1, H, W, C)``."""
        return self.input.shape

    @property
    def input_dtype(self) -> np.dtype:
        """Type of the input tensor (float32, int8 or uint8)."""
        return np.dtype(self.input.dtype)

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the output tensors, in output-index order."""
        return [info.shape for info in self.outputs]

    @property
    def scale_order(self) -> list[int]:
        """For detection specs: the output index of each stride, ascending (see
        :func:`~edgecnn.runtime.resolve.scale_order`); TFLite may not keep the Keras order."""
        if self.spec is None or self.spec.output.layout == "classes":
            raise ModelError(f"{self.path}: scale_order needs a detection spec")
        return scale_order(self.spec, self.output_shapes)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run on a float32 NHWC input (already preprocessed); float32 outputs in output-index order.

        ``x`` may omit the batch axis. Int8/uint8 inputs are quantised here.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == len(self.input_shape) - 1:
            x = x[None]
        if x.shape != self.input_shape:
            raise ValueError(f"input of shape {x.shape} does not fit the model input {self.input_shape}")
        self.invoke_raw(quantize_tensor(x, self.input))
        return self.outputs_float()

    def run_frame(self, frame_bgr: np.ndarray) -> tuple[list[np.ndarray], Letterbox]:
        """Preprocess a camera frame as the spec says, run, and return float32 outputs and the
        :class:`Letterbox` that maps input pixels back to the frame."""
        if self.spec is None:
            raise ModelError(
                f"{self.path} {NO_METADATA}: give TFLiteModel a spec (edgecnn.runtime.resolve_spec)"
            )
        info = self.input
        if info.quantized:
            raw, box_map = preprocess_quantized(
                frame_bgr, self.spec.input, info.effective_scale, info.zero_point, info.dtype
            )
        else:
            tensor, box_map = preprocess(frame_bgr, self.spec.input)
            raw = tensor.astype(info.dtype, copy=False)
        self.invoke_raw(raw)
        return self.outputs_float(), box_map

    def invoke_raw(self, x_raw: np.ndarray | None = None) -> None:
        """Set the input tensor to ``x_raw`` (already of the input dtype and shape; None keeps
        the current content) and invoke. The cheapest call, for benchmarks."""
        if x_raw is not None:
            self._interpreter.set_tensor(self.input.index, x_raw)
        self._interpreter.invoke()

    def outputs_raw(self) -> list[np.ndarray]:
        """Copies of the output tensors as they are (int8/uint8 for quantised outputs)."""
        return [self._interpreter.get_tensor(info.index) for info in self.outputs]

    def outputs_float(self) -> list[np.ndarray]:
        """The output tensors dequantised to float32, in output-index order."""
        raw = self.outputs_raw()
        return [dequantize_tensor(r, info) for r, info in zip(raw, self.outputs, strict=True)]

    def __repr__(self) -> str:
        return (
            f"TFLiteModel({str(self.path)!r}, backend={self.backend!r}, input={self.input_shape} "
            f"{self.input.dtype}, outputs={self.output_shapes})"
        )
