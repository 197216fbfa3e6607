"""Fixtures for the model-zoo tests: the registry's tiny variants and an int8 converter.

Every family registers one ``*_test`` variant (32-64 px, small width); tests are parametrised
over the registry so that a new family or variant is covered without editing the tests.
Keras state is cleared after each test so that builds do not accumulate.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from edgecnn.architectures import ModelInfo


@pytest.fixture(autouse=True)
def _clear_keras() -> Iterator[None]:
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


@pytest.fixture(scope="session")
def random_images() -> Callable[[ModelInfo, int], np.ndarray]:
    """``random_images(info, count)``: random frames normalised as the variant's InputSpec says."""

    def make(info: ModelInfo, count: int, seed: int = 0) -> np.ndarray:
        spec = info.input_spec()
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, size=(count, spec.height, spec.width, spec.channels)).astype("float32")
        return (pixels - np.array(spec.mean, "float32")) / np.array(spec.std, "float32")

    return make


@pytest.fixture(scope="session")
def forward() -> Callable[[Any, np.ndarray], list[np.ndarray]]:
    """``forward(model, images)``: the model's outputs as a list of numpy arrays.

    An eager call in inference mode: ``model.predict`` would trace a tf.function first, which
    takes seconds for a MobileNet.
    """

    def run(model: Any, images: np.ndarray) -> list[np.ndarray]:
        outputs = model(images, training=False)
        return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]

    return run


@pytest.fixture(scope="session")
def calibrate_batch_norm() -> Callable[[Any, np.ndarray], None]:
    """``calibrate_batch_norm(model, images)``: set every batch norm's moving statistics to
    those of ``images`` (one training-mode pass with momentum 0).

    At initialisation they are 0 and 1, and a deep MobileNet's outputs shrink to ~1e-10, which
    would make any comparison of outputs vacuous.
    """
    from keras import layers

    def calibrate(model: Any, images: np.ndarray) -> None:
        norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
        momenta = [layer.momentum for layer in norms]
        for layer in norms:
            layer.momentum = 0.0
        model(images, training=True)
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum

    return calibrate


@pytest.fixture(scope="session")
def to_int8() -> Callable[[Any, np.ndarray], bytes]:
    """Convert a Keras model to full-integer int8 TFLite (the FACTS.md converter recipe)."""
    import tensorflow as tf

    def convert(model: Any, samples: np.ndarray) -> bytes:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()

    return convert
