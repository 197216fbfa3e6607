"""Tiny real models for the runtime tests, built once per session.

Two Keras models with random weights, small enough to convert in about a second each:

* a classifier: 32x32 RGB in, 3 logits out;
* a 2-scale YOLO-style detector: 64x64 RGB in, outputs at strides 8 and 16 of shape
  ``(1, H/s, W/s, 2 anchors x (5 + 2 classes))`` as :mod:`edgecnn.runtime.spec` describes.

Each is converted to float32 TFLite and to full-integer TFLite with int8 (and uint8)
input and output tensors through a representative dataset, with the converter recipe of
FACTS.md. Fixtures that need TensorFlow skip when it is not installed; tests using them
carry ``@pytest.mark.tf``.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec

ROOT = Path(__file__).resolve().parents[2]
DET_ANCHORS = [[(10.0, 14.0), (23.0, 27.0)], [(37.0, 58.0), (81.0, 82.0)]]


@pytest.fixture(scope="session")
def cls_spec() -> ModelSpec:
    """The spec of the tiny classifier."""
    return ModelSpec(
        name="tiny_cls",
        task="classify",
        labels=["cat", "dog", "bird"],
        input=InputSpec(width=32, height=32),
        output=OutputSpec(layout="classes", class_activation="softmax"),
    )


@pytest.fixture(scope="session")
def det_spec() -> ModelSpec:
    """The spec of the tiny detector."""
    return ModelSpec(
        name="tiny_det",
        task="detect",
        labels=["person", "car"],
        input=InputSpec(width=64, height=64, color_order="RGB"),
        output=OutputSpec(layout="yolo_v3", anchors=DET_ANCHORS, strides=[8, 16]),
        created_by="edgecnn tests",
    )


@pytest.fixture(scope="session")
def tiny_keras() -> dict[str, Any]:
    """``{"cls": keras.Model, "det": keras.Model}`` with fixed random weights."""
    pytest.importorskip("tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(image)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    logits = layers.Dense(3, name="logits")(x)
    classifier = keras.Model(image, logits, name="tiny_cls")

    image = keras.Input((64, 64, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(image)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    s8 = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv3")(x)
    s16 = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv4")(s8)
    channels = len(DET_ANCHORS[0]) * (5 + 2)
    head8 = layers.Conv2D(channels, 1, name="head_s8")(s8)
    head16 = layers.Conv2D(channels, 1, name="head_s16")(s16)
    detector = keras.Model(image, [head8, head16], name="tiny_det")
    return {"cls": classifier, "det": detector}


def _convert(model: Any, io_type: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if io_type != "float":
        rng = np.random.default_rng(1)
        shape = (1, *model.input_shape[1:])

        def representative() -> Any:
            for _ in range(32):
                yield [rng.random(shape, dtype=np.float32)]  # pixels / 255, as the spec's mean/std say

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_type)
    with warnings.catch_warnings():
        # uint8 interfaces: the converter asks for input statistics it then does not need.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()


@pytest.fixture(scope="session")
def tiny_tflite(tiny_keras: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Converted models without edgecnn metadata: ``cls_float``, ``cls_int8``, ``cls_uint8``,
    ``det_float``, ``det_int8``, ``det_uint8`` -> path."""
    folder = tmp_path_factory.mktemp("tflite")
    paths = {}
    for kind, model in tiny_keras.items():
        for io_type in ("float", "int8", "uint8"):
            path = folder / f"{kind}_{io_type}.tflite"
            path.write_bytes(_convert(model, io_type))
            paths[f"{kind}_{io_type}"] = path
    return paths


@pytest.fixture(scope="session")
def tiny_tflite_spec(
    tiny_tflite: dict[str, Path],
    cls_spec: ModelSpec,
    det_spec: ModelSpec,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """The same models with their spec embedded (written by the metadata writer)."""
    from edgecnn.quantize.metadata_writer import write_spec

    folder = tmp_path_factory.mktemp("tflite_spec")
    return {
        name: write_spec(path, cls_spec if name.startswith("cls") else det_spec, folder / path.name)
        for name, path in tiny_tflite.items()
    }


@pytest.fixture
def model_copy(tmp_path: Path):
    """Copy a model into this test's folder (to damage it without touching the shared one)."""

    def copy(path: Path, name: str | None = None) -> Path:
        return Path(shutil.copy(path, tmp_path / (name or path.name)))

    return copy


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``python -m edgecnn ARGS`` in a child process, as a user would."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH")) if p)
    full_env.pop("EDGECNN_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, env=full_env, check=False
    )


@pytest.fixture
def cli():
    """:func:`run_cli` as a fixture."""
    return run_cli
