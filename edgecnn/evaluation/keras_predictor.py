"""A :class:`~edgecnn.evaluation.predictor.Predictor` over an in-memory or saved Keras model.

The forward pass runs in a ``tf.function`` (inference mode: batch norm uses its moving
statistics, dropout is off); an eager call costs about 25 times more here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.evaluation.predictor import order_by_stride
from edgecnn.runtime.spec import ModelSpec

if TYPE_CHECKING:
    import keras


class KerasPredictor:
    """Predict with a Keras model.

    Args:
        model: the model (raw outputs: one tensor per scale, or ``(B, C)`` scores).
        spec: its model spec.
        batch_size: images per call.

    Example:
        >>> predictor = KerasPredictor.from_file("runs/a/model.keras", spec)  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, spec: ModelSpec, batch_size: int = 32) -> None:
        import tensorflow as tf

        self.model = model
        self.spec = spec
        self.batch_size = batch_size
        self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False)

    @classmethod
    def from_file(cls, path: str | Path, spec: ModelSpec, batch_size: int = 32) -> KerasPredictor:
        """Load a ``.keras`` file (no custom objects needed for edgecnn models).

        Raises:
            ModelError: the file does not load, or does not fit ``spec`` (another run's spec.json).
        """
        import keras

        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"{path}: cannot load the Keras model: {first}") from None
        check_model_fits_spec(model, spec, str(path))
        return cls(model, spec, batch_size=batch_size)

    def predict_batch(self, images: np.ndarray) -> list[np.ndarray] | np.ndarray:
        """Raw outputs for ``images`` ``(B, H, W, C)`` float32."""
        out: Any = self._call(np.asarray(images, np.float32))
        if self.spec.task == "classify":
            return np.asarray(out[0] if isinstance(out, list | tuple) else out, np.float32)
        outputs = [np.asarray(o, np.float32) for o in (out if isinstance(out, list | tuple) else [out])]
        return order_by_stride(outputs, self.spec)


def check_model_fits_spec(model: keras.Model, spec: ModelSpec, source: str) -> None:
    """Compare the Keras model's input and output shapes with the spec before using it.

    A spec.json of another run (copied next to the model, or the model copied into another
    run) fails here rather than deep in TensorFlow or with a wrong class mapping.

    Raises:
        ModelError: input size or channels, the number of outputs or their channels (classes,
            anchors) differ from the spec.
    """
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    want = (spec.input.height, spec.input.width, spec.input.channels)
    if shape != want:
        raise ModelError(f"{source}: the model input is {shape} (H, W, C) but spec.json says {want}")
    outputs = len(model.outputs)
    expected = 1 if spec.task == "classify" else len(spec.output.strides)
    if outputs != expected:
        raise ModelError(f"{source}: the model has {outputs} output(s) but spec.json describes {expected}")
    channels = sorted(int(o.shape[-1]) for o in model.outputs)
    if spec.task == "classify":
        needed = [spec.num_classes]
    else:
        needed = sorted(len(anchors) * (5 + spec.num_classes) for anchors in spec.output.anchors)
    if channels != needed:
        raise ModelError(
            f"{source}: the model's output channels {channels} do not fit spec.json, which needs "
            f"{needed} for its {spec.num_classes} labels"
            + ("" if spec.task == "classify" else " and anchors per scale")
        )
