"""Tiny real models and test inputs for the packaging and board tests (imported by their conftests).

* :func:`build_detector`: a 2-scale YOLO-style int8 detector, 64x64 RGB in, with *designed*
  weights: it finds yellow blocks ("person") and blue blocks ("car") on a grey background.
  Its colour features saturate (ReLU6) far from their thresholds, so pixel differences of a
  few levels between two machines' video decoders and resizers (measured: FFmpeg's MJPEG
  decode differs by up to 2 levels between x86_64 and aarch64 OpenCV wheels, ``cv2.resize``
  INTER_LINEAR by 1) cannot change its detections: on equal int8 arithmetic, equal output.
* :func:`build_random_detector`: the same head layout with random weights; its raw int8
  outputs on a fixed input tensor must be bit-identical between machines (the interpreter
  check, with no video decoding in between).
* :func:`build_flex_model`: a model converted with ``SELECT_TF_OPS`` around an op TFLite has no
  builtin for (``tf.image.adjust_hue``): it holds a ``FlexAdjustHue`` custom operator.
* :func:`patch_operator_code`: the same model file with one operator code's builtin code or
  version changed in place (an op the runtime does not know, or a too new version).
* :func:`write_video`: a short MJPG ``.avi`` of the blocks moving on a 16-pixel grid.

Each is converted to full-integer int8 TFLite with the converter recipe of FACTS.md and gets
its spec embedded.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.runtime.flatbuffer import ModelFields, root_table
from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec, ThresholdSpec

DET_ANCHORS = [[(10.0, 14.0), (23.0, 27.0)], [(37.0, 58.0), (81.0, 82.0)]]
DET_SPEC = ModelSpec(
    name="tiny_det",
    task="detect",
    labels=["person", "car"],
    input=InputSpec(width=64, height=64, color_order="RGB"),
    output=OutputSpec(layout="yolo_v3", anchors=DET_ANCHORS, strides=[8, 16]),
    thresholds=ThresholdSpec(conf=0.25, iou=0.45, max_det=100),
    created_by="edgecnn package tests",
)
#: RGB colours of the video: background, letterbox-like grey, "person" and "car" blocks.
GREY, YELLOW, BLUE = (96, 96, 96), (240, 200, 40), (30, 60, 230)

#: A device config for tests: a video file instead of a camera (paths as on the board).
DEVICE_CONFIG = """\
# A device config for tests: a video file instead of a camera.
device: test-board
model:
  path: /models/elsewhere.tflite   # the bundle points this at its own model
  num_threads: 2
source:
  type: opencv
  input: /mnt/host/video.avi
sinks:
  - type: jsonl
    path: /var/lib/edgecnn/detections.jsonl
"""


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _convert(model: Any, representative: Any, path: Path) -> Path:
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # int8 interfaces: the converter asks for input statistics it then does not need.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        path.write_bytes(converter.convert())
    return path


def block_frame(step: int, width: int = 64, height: int = 64) -> np.ndarray:
    """An RGB frame: a yellow and a blue block on grey, on a grid of ``width // 4`` pixels."""
    cell = width // 4
    frame = np.full((height, width, 3), GREY, np.uint8)
    x = (step % 3) * cell
    frame[cell : 3 * cell, x : x + 2 * cell] = YELLOW
    y = (step % 2) * cell
    frame[y : y + cell, 3 * cell : 4 * cell] = BLUE
    return frame


def build_detector(folder: Path) -> Path:
    """Write ``tiny_det_int8.tflite``: the designed colour-block detector, spec embedded."""
    _tf()
    import keras
    from keras import layers

    from edgecnn.quantize.metadata_writer import write_spec

    image = keras.Input((64, 64, 3), name="image")
    cells = layers.AveragePooling2D(8, name="cells")(image)
    colour = layers.Conv2D(2, 1, activation="relu6", name="colour")(cells)  # yellow-ness, blue-ness
    coarse = layers.MaxPooling2D(2, name="cells16")(colour)
    channels = len(DET_ANCHORS[0]) * (5 + len(DET_SPEC.labels))
    head8 = layers.Conv2D(channels, 1, name="head_s8")(colour)
    head16 = layers.Conv2D(channels, 1, name="head_s16")(coarse)
    model = keras.Model(image, [head8, head16], name="tiny_det")
    # Pixels arrive as value / 255. Each feature is 10 x a colour contrast - 3, clipped to 0..6:
    # 6 on a block, 0 on grey, with margins of several units either side.
    model.get_layer("colour").set_weights(
        [
            np.array([[[[10.0, -10.0], [10.0, -10.0], [-20.0, 20.0]]]], np.float32),
            np.array([-3.0, -3.0], np.float32),
        ]
    )
    kernel = np.zeros((1, 1, 2, channels), np.float32)
    bias = np.zeros(channels, np.float32)
    for anchor in range(len(DET_ANCHORS[0])):
        base = anchor * (5 + len(DET_SPEC.labels))  # tx ty tw th stay 0: anchor-sized boxes on cells
        kernel[0, 0, :, base + 4] = (2.0, 2.0)  # objectness logit 6 on a block, -6 on grey
        bias[base + 4] = -6.0
        kernel[0, 0, :, base + 5] = (2.0, -2.0)  # "person": yellow
        kernel[0, 0, :, base + 6] = (-2.0, 2.0)  # "car": blue
    for name in ("head_s8", "head_s16"):
        model.get_layer(name).set_weights([kernel, bias])

    def representative() -> Any:
        for step in range(24):
            yield [block_frame(step)[None].astype(np.float32) / 255.0]

    raw = _convert(model, representative, folder / "tiny_det_raw.tflite")
    return write_spec(raw, DET_SPEC, folder / "tiny_det_int8.tflite")


def build_random_detector(folder: Path) -> Path:
    """Write ``random_det_int8.tflite``: 4 conv layers and the same heads, random fixed weights."""
    _tf()
    import keras
    from keras import layers

    from edgecnn.quantize.metadata_writer import write_spec

    keras.utils.set_random_seed(0)
    image = keras.Input((64, 64, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(image)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    s8 = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv3")(x)
    s16 = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv4")(s8)
    channels = len(DET_ANCHORS[0]) * (5 + len(DET_SPEC.labels))
    head8 = layers.Conv2D(channels, 1, name="head_s8")(s8)
    head16 = layers.Conv2D(channels, 1, name="head_s16")(s16)
    model = keras.Model(image, [head8, head16], name="random_det")
    rng = np.random.default_rng(1)

    def representative() -> Any:
        for _ in range(32):
            yield [rng.random((1, 64, 64, 3), dtype=np.float32)]  # pixels / 255, as the spec says

    raw = _convert(model, representative, folder / "random_det_raw.tflite")
    spec = DET_SPEC.model_copy(update={"name": "random_det"})
    return write_spec(raw, spec, folder / "random_det_int8.tflite")


def build_flex_model(folder: Path) -> Path:
    """Write ``flex_adjust_hue.tflite``: an image model whose graph needs the TF Select op AdjustHue."""
    tf = _tf()

    class AdjustHue(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32, name="image")])
        def __call__(self, x: Any) -> Any:
            return tf.image.adjust_hue(x, 0.1)

    module = AdjustHue()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = converter.convert()
    path = folder / "flex_adjust_hue.tflite"
    path.write_bytes(data)
    return path


def patch_operator_code(
    source: Path, dest: Path, builtin: int, *, new_code: int | None = None, new_version: int | None = None
) -> Path:
    """Copy a model, changing (in place, same size) the operator code of builtin ``builtin``.

    The fields must be stored in the file (the converter writes ``builtin_code`` and, for
    versions above 1, ``version``).
    """
    data = bytearray(source.read_bytes())
    model = root_table(data)
    for table in model.tables(ModelFields.OPERATOR_CODES, "operator code"):
        if table.scalar(3, struct.Struct("<i"), 0) != builtin:
            continue
        for field, value in ((3, new_code), (2, new_version)):
            if value is None:
                continue
            pos = table.field_pos(field, 4)
            if pos is None:
                raise ValueError(f"operator code {builtin}: field {field} not stored; cannot patch in place")
            struct.pack_into("<i", data, pos, value)
        dest.write_bytes(bytes(data))
        return dest
    raise ValueError(f"{source} has no operator code {builtin}")


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (128, 96)) -> Path:
    """A short MJPG ``.avi`` of :func:`block_frame` at ``size`` (default 128x96: the model sees it
    halved and letterboxed, with block edges on JPEG block and model cell boundaries)."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for step in range(frames):
        writer.write(cv2.cvtColor(block_frame(step, width, height), cv2.COLOR_RGB2BGR))
    writer.release()
    return path
