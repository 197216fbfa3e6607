"""Keras model to ``.tflite``: full-integer int8, float16, dynamic-range or float, with the spec embedded.

:func:`quantize_model` is what ``edgecnn quantize`` runs:

1. read the training run: ``MODEL.keras`` and the ``spec.json`` next to it (labels, input,
   layout, anchors, thresholds);
2. convert with ``tf.lite.TFLiteConverter`` (:func:`convert_keras`). ``int8`` is the recipe of
   FACTS.md: ``Optimize.DEFAULT``, a representative dataset from a verified calibration set
   preprocessed exactly as on the board, ``TFLITE_BUILTINS_INT8`` only, per-channel weights
   (the converter's default) and int8 (or uint8, or float) input and output tensors;
3. for ``int8``, refuse any op left computing in float (:func:`float_ops`);
4. embed the spec (:func:`~edgecnn.quantize.metadata_writer.embed_spec`), so the ``.tflite``
   alone is enough on the board;
5. check the written file with :func:`~edgecnn.runtime.validate.validate_model` (loaded and
   run once in a child process) before it takes its final name.

Google's LiteRT documentation marks quantisation inside the converter as deprecated in
favour of the separate ``ai-edge-quantizer`` package; in TensorFlow 2.21 the converter path
still works and is what edgecnn uses (see docs/quantization.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import re
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from pydantic import ValidationError

from edgecnn._stderr import captured_stderr_fd
from edgecnn.errors import ModelError, UserError
from edgecnn.evaluation.keras_predictor import check_model_fits_spec
from edgecnn.outputs import new_file_mode
from edgecnn.quantize.calibration import CalibrationSet, load_calibration_set, representative_dataset
from edgecnn.quantize.metadata_writer import embed_spec
from edgecnn.runtime.backend import XNNPACK_NOTICE, load_backend
from edgecnn.runtime.spec import ModelSpec
from edgecnn.runtime.validate import ModelInfo, validate_model

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

Mode = Literal["int8", "fp16", "dynamic", "float"]
IoType = Literal["int8", "uint8", "float"]
MODES: tuple[Mode, ...] = ("int8", "fp16", "dynamic", "float")
IO_TYPES: tuple[IoType, ...] = ("int8", "uint8", "float")
SPEC_FILE = "spec.json"
#: What the TFLite converter (and the QuantizationDebugger's interpreters) print from C++ on
#: every run (settings, the XNNPACK notice, absl INFO / WARNING lines of their own source
#: files): noise to a user. Errors (``E...``) still show.
CONVERTER_NOTICE = re.compile(
    r"^fully_quantize: \d+, inference_type: \d+"
    rf"|{XNNPACK_NOTICE.pattern}"
    r"|^[IW]\d{4} [\d:.]+ +\d+ (tf_tfl_flatbuffer_helpers|flatbuffer_export|quantize_model|"
    r"tf_saved_model_freeze_variables|tf_tfl_translate|reader|loader|mlir_graph_optimization_pass|"
    r"dump_mlir_util)\.cc:\d+\]"
)
_FLOAT_DTYPES = {"float16", "float32", "float64", "bfloat16"}


@dataclass(frozen=True)
class QuantizeResult:
    """What :func:`quantize_model` wrote.

    Attributes:
        path: the ``.tflite`` file.
        mode: conversion mode.
        io: type of the input and output tensors.
        size: file size in bytes.
        spec: the embedded spec.
        info: the child-process check of the file (tensors, ops, backend).
        calibration: the calibration set used (``int8`` only).
        per_channel_ops: ops whose weights are quantised per output channel.
        seconds: time spent converting (calibration included).
    """

    path: Path
    mode: Mode
    io: IoType
    size: int
    spec: ModelSpec
    info: ModelInfo
    calibration: CalibrationSet | None
    per_channel_ops: int
    seconds: float


def import_tensorflow() -> Any:
    """Import TensorFlow with its C++ info logs off (they drown the CLI output)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _one_line(exc: BaseException) -> str:
    """An exception as one line: pydantic's field errors, or the lines that say "error"."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors()[:3])
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return "; ".join((errors or lines)[:3]) or type(exc).__name__


def load_run_spec(model_path: str | Path) -> ModelSpec:
    """Read the ``spec.json`` next to a ``.keras`` model (what a training run writes).

    Raises:
        UserError: no ``spec.json`` there, or it is not a valid spec.
    """
    path = Path(model_path).with_name(SPEC_FILE)
    if not path.is_file():
        raise UserError(
            f"{model_path}: no {SPEC_FILE} next to it; a training run writes the model with its spec.json "
            "(labels, input, layout, anchors), which the .tflite must carry"
        )
    try:
        return ModelSpec.load(path)
    except ValueError as exc:
        raise UserError(f"{path}: not a valid model spec: {_one_line(exc)}") from None


def load_keras_model(model_path: str | Path) -> keras.Model:
    """Load a ``.keras`` model (architecture and weights; no optimizer state needed).

    Raises:
        ModelError: missing, not a Keras model file, or it cannot be rebuilt.
    """
    path = check_model_file(model_path)
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" for a truncated file
        raise ModelError(f"{path}: not a Keras model file (a .keras file is a zip archive; this one is not)")
    import_tensorflow()
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the Keras model: {_one_line(exc)}") from None


def check_options(mode: str, io: str | None) -> IoType:
    """Check a mode and input/output type pair; return the type to use (see :func:`default_io`).

    Raises:
        UserError: unknown mode or type, or an integer interface for a non-int8 mode.
    """
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    if io is None:
        return default_io(cast(Mode, mode))
    if io not in IO_TYPES:
        raise UserError(f"unknown io type {io!r}: expected one of {', '.join(IO_TYPES)}")
    if mode != "int8" and io != "float":
        raise UserError(f"--io {io} needs --mode int8 (a {mode} model has float input and output tensors)")
    return cast(IoType, io)


def check_model_file(model_path: str | Path) -> Path:
    """The path of a ``.keras`` model file that exists.

    Raises:
        ModelError: missing, a folder, or not named ``*.keras``.
    """
    path = Path(model_path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if not path.is_file() or path.suffix.lower() != ".keras":
        raise ModelError(f"{path}: expected a Keras model file (MODEL.keras, as training writes it)")
    return path


def convert_keras(
    model: keras.Model | str | Path,
    mode: Mode = "int8",
    io: IoType = "int8",
    representative: Callable[[], Iterator[list[np.ndarray]]] | None = None,
) -> bytes:
    """Convert a Keras model with ``tf.lite.TFLiteConverter``.

    Args:
        model: the Keras model, or the SavedModel folder :func:`traced` exported it to.
        mode: ``int8`` full-integer (needs ``representative``), ``fp16`` float16 weights,
            ``dynamic`` int8 weights with float activations, ``float`` no optimisation.
        io: input/output tensor type; ``int8`` / ``uint8`` only with ``mode="int8"``.
        representative: the converter's ``representative_dataset`` (int8 only).

    Returns:
        The ``.tflite`` bytes (without edgecnn metadata).

    Raises:
        UserError: a bad mode / io combination or no representative data for int8.
        ModelError: the converter failed (e.g. an op with no int8 kernel).
    """
    check_options(mode, io)
    if mode == "int8" and representative is None:
        raise UserError("int8 quantisation needs calibration images (--calib)")
    converter = configure_converter(new_converter(model), mode, io, representative)
    try:
        quiet = captured_stderr_fd(CONVERTER_NOTICE)
        with warnings.catch_warnings(), contextlib.redirect_stdout(StringIO()), quiet:
            # Keras' export prints its endpoints; uint8 interfaces warn about input statistics;
            # the converter's own C++ notices go to fd 2.
            warnings.simplefilter("ignore")
            return bytes(converter.convert())
    except Exception as exc:
        raise ModelError(f"the TFLite converter failed ({mode}): {_one_line(exc)}") from None


@contextlib.contextmanager
def traced(model: keras.Model) -> Iterator[Path]:
    """Export a Keras model once to a temporary SavedModel folder, for several conversions.

    ``TFLiteConverter.from_keras_model`` exports (traces) the model again on every
    ``convert()``, which is most of the conversion time; this is the same export (an
    inference-mode ``serve`` endpoint with the model's input signature), done once. The
    folder is deleted on exit.
    """
    tf = import_tensorflow()
    import keras

    with tempfile.TemporaryDirectory(prefix="edgecnn-savedmodel-") as folder:
        archive = keras.export.ExportArchive()
        archive.track(model)
        signature = [tf.TensorSpec(x.shape, dtype=x.dtype, name=x.name) for x in model.inputs]
        archive.add_endpoint("serve", functools.partial(model.__call__, training=False), signature)
        with contextlib.redirect_stdout(StringIO()):
            archive.write_out(folder, verbose=False)
        yield Path(folder)


def new_converter(model: keras.Model | str | Path) -> Any:
    """A ``tf.lite.TFLiteConverter`` for a Keras model or a SavedModel folder (from :func:`traced`)."""
    tf = import_tensorflow()
    if isinstance(model, str | Path):
        return tf.lite.TFLiteConverter.from_saved_model(str(model))
    return tf.lite.TFLiteConverter.from_keras_model(model)


def configure_converter(
    converter: Any,
    mode: Mode,
    io: IoType,
    representative: Callable[[], Iterator[list[np.ndarray]]] | None,
) -> Any:
    """Set a ``TFLiteConverter``'s options for ``mode`` and ``io`` (see :func:`convert_keras`)."""
    tf = import_tensorflow()
    if mode == "float":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        types = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}
        converter.inference_input_type = types[io]
        converter.inference_output_type = types[io]
    return converter


def _interpreter(model_bytes: bytes) -> Any:
    """An interpreter (LiteRT first, see :mod:`edgecnn.runtime.backend`) without the XNNPACK
    delegate, so that ops are listed one by one rather than as one ``DELEGATE`` node."""
    backend = load_backend()
    module = sys.modules[backend.interpreter_class.__module__]
    interpreter = backend.interpreter_class(
        model_content=model_bytes,
        experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    return interpreter


def float_ops(model_bytes: bytes) -> list[str]:
    """Ops that read or write a float tensor inside the graph: float fallback in an int8 model.

    The graph's own input and output tensors may be float (``--io float`` puts a QUANTIZE
    after the input and a DEQUANTIZE before each output); any other float tensor means an op
    computes in float.

    Returns:
        One ``"OP_NAME (output tensor name)"`` entry per offending op, in execution order.
    """
    interpreter = _interpreter(model_bytes)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    boundary = {d["index"] for d in (*interpreter.get_input_details(), *interpreter.get_output_details())}
    found = []
    for op in interpreter._get_ops_details():
        inner = [i for i in (*op["inputs"], *op["outputs"]) if i >= 0 and i not in boundary]
        if any(np.dtype(tensors[i]["dtype"]).name in _FLOAT_DTYPES for i in inner):
            found.append(f"{op['op_name']} ({tensors[op['outputs'][0]]['name']})")
    return found


def per_channel_ops(model_bytes: bytes) -> int:
    """How many ops have a constant input quantised with one scale per channel (per-channel weights)."""
    interpreter = _interpreter(model_bytes)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    count = 0
    for op in interpreter._get_ops_details():
        scales = [len(tensors[i]["quantization_parameters"]["scales"]) for i in op["inputs"] if i >= 0]
        count += any(s > 1 for s in scales)
    return count


def write_atomic(path: Path, data: bytes, check: Callable[[Path], Any] | None = None) -> Any:
    """Write ``data`` under a temporary name in ``path``'s folder, run ``check`` on it, then rename.

    Returns what ``check`` returns. A failed check leaves no file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode())  # not mkstemp's 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        result = check(Path(tmp)) if check is not None else None
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result


def default_io(mode: Mode) -> IoType:
    """The input/output type used when none is given: int8 for int8 models, else float."""
    return "int8" if mode == "int8" else "float"


def quantize_model(
    model_path: str | Path,
    out: str | Path,
    calib: str | Path | CalibrationSet | None = None,
    mode: Mode = "int8",
    io: IoType | None = None,
    model: keras.Model | None = None,
    spec: ModelSpec | None = None,
    progress: Callable[[int], None] | None = None,
    saved_model: str | Path | None = None,
) -> QuantizeResult:
    """Convert a trained Keras model to a ``.tflite`` file carrying its spec (steps in the module docstring).

    Args:
        model_path: the ``.keras`` file; ``spec.json`` is read from its folder.
        out: the ``.tflite`` file to write (folders are created).
        calib: the calibration set folder (or an already verified set); required for ``int8``.
        mode: ``int8``, ``fp16``, ``dynamic`` or ``float``.
        io: input/output tensor type; None: :func:`default_io`.
        model: the already loaded Keras model (skips loading ``model_path``).
        spec: the spec to embed (default: ``spec.json`` next to the model).
        progress: called with the number of calibration images processed.
        saved_model: the model already exported by :func:`traced`: converted from there.

    Returns:
        :class:`QuantizeResult`.

    Raises:
        UserError: missing spec.json, bad calibration set (too few is fine here: the set was
            checked when built), bad options, model and spec disagree.
        ModelError: the model cannot be loaded or converted, an int8 model keeps float ops,
            or the written file fails the child-process check.
    """
    started = time.perf_counter()
    io_type = check_options(mode, io)
    check_model_file(model_path)
    spec = spec or load_run_spec(model_path)
    calibration = None
    if mode == "int8":
        if calib is None:
            raise UserError(
                "--mode int8 needs --calib calibration/NAME (build one with `edgecnn calib build`)"
            )
        calibration = calib if isinstance(calib, CalibrationSet) else load_calibration_set(calib)
    if model is None:
        model = load_keras_model(model_path)
    check_model_fits_spec(model, spec, str(model_path))
    representative = None
    if calibration is not None:
        representative = representative_dataset(calibration, spec.input, progress)
    blob = convert_keras(saved_model or model, mode, io_type, representative)
    if mode == "int8":
        leftover = float_ops(blob)
        if leftover:
            raise ModelError(
                f"{model_path}: the int8 model still computes in float in {len(leftover)} op(s): "
                f"{', '.join(leftover[:8])}{' ...' if len(leftover) > 8 else ''}"
            )
    channels = per_channel_ops(blob) if mode in ("int8", "dynamic") else 0
    target = Path(out)
    info: ModelInfo = write_atomic(
        target, embed_spec(blob, spec), lambda tmp: validate_model(tmp, expect_spec=True)
    )
    info = dataclasses.replace(info, path=str(target))
    return QuantizeResult(
        path=target,
        mode=mode,
        io=io_type,
        size=target.stat().st_size,
        spec=spec,
        info=info,
        calibration=calibration,
        per_channel_ops=channels,
        seconds=time.perf_counter() - started,
    )
