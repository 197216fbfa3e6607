"""The :class:`Predictor` protocol and :func:`load_predictor`, which picks a backend by file suffix.

A predictor maps a batch of preprocessed images (float32 NHWC, exactly what
:func:`edgecnn.runtime.preprocessing.preprocess` gives) to the model's raw outputs: for a
detector one array ``(B, H, W, A * (5 + C))`` per scale in ``spec.output.strides`` order, for
a classifier one ``(B, C)`` array of scores (logits or probabilities, as
``spec.output.class_activation`` says). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.runtime.resolve import resolve_file_spec, resolve_spec
from edgecnn.runtime.spec import ANCHOR_FREE_LAYOUTS, ModelSpec

#: The spec file saved next to a Keras model.
SPEC_FILE = "spec.json"


@runtime_checkable
class Predictor(Protocol):
    """Runs a model on batches of preprocessed images.

    Attributes:
        spec: the model spec (input size, normalisation, output layout, labels).
        batch_size: the batch size the predictor prefers (1 for TFLite models).
    """

    spec: ModelSpec
    batch_size: int

    def predict_batch(self, images: np.ndarray) -> list[np.ndarray] | np.ndarray:
        """Raw outputs for ``images`` ``(B, H, W, C)`` float32.

        Returns:
            Detection: one ``(B, H, W, A * (5 + C))`` float32 array per scale, in
            ``spec.output.strides`` order. Classification: ``(B, C)`` float32 scores.
        """
        ...


def order_by_stride(outputs: Sequence[np.ndarray], spec: ModelSpec) -> list[np.ndarray]:
    """Detection outputs (any order) sorted into ``spec.output.strides`` order by grid size;
    the one output of an anchor-free layout (no strides) as it is.

    Raises:
        ModelError: an output grid matches no stride of the spec.
    """
    if spec.output.layout in ANCHOR_FREE_LAYOUTS:
        return list(outputs)
    by_grid = {tuple(np.shape(o)[1:3]): o for o in outputs}
    ordered = []
    for stride in spec.output.strides:
        grid = (math.ceil(spec.input.height / stride), math.ceil(spec.input.width / stride))
        if grid not in by_grid:
            shapes = ", ".join(str(tuple(np.shape(o))) for o in outputs)
            raise ModelError(f"outputs {shapes} have no {grid[0]}x{grid[1]} grid for stride {stride}")
        ordered.append(by_grid[grid])
    return ordered


def spec_for_model(path: str | Path, settings: Mapping[str, Any] | None = None) -> ModelSpec:
    """The spec of a model file: ``spec.json`` next to a ``.keras`` file, embedded in a ``.tflite``,
    with ``settings`` applied (:func:`~edgecnn.runtime.resolve.resolve_spec` keywords, the
    flags for models without edgecnn metadata).

    Raises:
        ModelError: no spec found (for a ``.tflite``: naming the flags to pass), or an
            unsupported file suffix.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        spec_path = path.with_name(SPEC_FILE)
        if not spec_path.is_file():
            raise ModelError(f"{path}: no {SPEC_FILE} next to the model (edgecnn train writes one)")
        try:
            spec = ModelSpec.load(spec_path)
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise ModelError(f"{spec_path}: not a valid model spec: {first}") from None
        return resolve_spec(spec, **settings, source=str(path)) if settings else spec
    if suffix == ".tflite":
        return resolve_file_spec(path, settings)
    raise ModelError(f"{path}: expected a .keras or .tflite model, got '{path.suffix}'")


def load_predictor(
    path: str | Path,
    batch_size: int = 32,
    num_threads: int | None = None,
    spec_settings: Mapping[str, Any] | None = None,
) -> Predictor:
    """A predictor for a ``.keras`` (with ``spec.json`` next to it) or ``.tflite`` model file.

    Args:
        path: the model file.
        batch_size: images per Keras call (TFLite models run one image at a time).
        num_threads: TFLite interpreter threads (None: the backend's default).
        spec_settings: settings for a model without edgecnn metadata (see :func:`spec_for_model`).

    Raises:
        ModelError: missing file, no spec, or a model that does not load.
    """
    spec = spec_for_model(path, spec_settings)
    if Path(path).suffix.lower() == ".keras":
        from edgecnn.evaluation.keras_predictor import KerasPredictor

        return KerasPredictor.from_file(path, spec, batch_size=batch_size)
    from edgecnn.evaluation.tflite_predictor import TFLitePredictor

    return TFLitePredictor(path, spec=spec, num_threads=num_threads)
