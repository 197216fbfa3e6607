"""A :class:`~edgecnn.evaluation.predictor.Predictor` over a ``.tflite`` file (board side: no TensorFlow).

Runs :class:`edgecnn.runtime.interpreter.TFLiteModel` one image at a time (converted models
have a batch of 1); int8 inputs are quantised and int8 outputs dequantised by the runtime.
TFLite does not keep the Keras output order, so outputs are put in stride order with the
model's :attr:`~edgecnn.runtime.interpreter.TFLiteModel.scale_order`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.runtime.interpreter import TFLiteModel
from edgecnn.runtime.spec import ModelSpec


class TFLitePredictor:
    """Predict with a ``.tflite`` model.

    Args:
        path: the model file.
        spec: the model spec; None reads the embedded one.
        num_threads: interpreter threads (None: the backend's default).

    Raises:
        ModelError: the file does not load, has no spec, or the spec does not fit it.
    """

    batch_size = 1

    def __init__(
        self, path: str | Path, spec: ModelSpec | None = None, num_threads: int | None = None
    ) -> None:
        from edgecnn.errors import ModelError

        self.model = TFLiteModel(path, num_threads=num_threads, spec=spec)
        if self.model.spec is None:
            raise ModelError(f"{path}: no embedded edgecnn spec; pass one")
        self.spec: ModelSpec = self.model.spec
        self._order = self.model.scale_order if self.spec.task == "detect" else [0]

    def predict_batch(self, images: np.ndarray) -> list[np.ndarray] | np.ndarray:
        """Raw outputs for ``images`` ``(B, H, W, C)``, one interpreter call per image."""
        per_image = []
        for image in np.asarray(images, np.float32):
            outputs = self.model.run(image[None])
            per_image.append([outputs[i] for i in self._order])
        stacked = [np.concatenate(parts, axis=0) for parts in zip(*per_image, strict=True)]
        if self.spec.task == "classify":
            return stacked[0].reshape(len(images), -1)
        return stacked
