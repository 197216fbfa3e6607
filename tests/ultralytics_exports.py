"""Tiny TFLite models shaped like Ultralytics YOLO exports, with Ultralytics' metadata appended.

The ``ultralytics`` package is not installed here, so these stand in for
``yolo export format=tflite``: each model's output has exactly the shape and meaning of an
Ultralytics head, and is constant (a Dense layer with a zero kernel whose bias holds the
output), so the detections it must give are known exactly. The input is 64x64 RGB, the
strides 8, 16 and 32: 64 + 16 + 4 = 84 candidates, centred on the grid cells as Ultralytics'
``make_anchors`` centres them.

* ``yolo_v8`` heads: ``(1, 4 + C, 84)``, ``cx, cy, w, h`` as fractions of the input (what
  Ultralytics' TFLite export gives) or in input pixels (older exports, other converters), or
  transposed ``(1, 84, 4 + C)``; class scores are probabilities. Every background candidate
  has a small box on its own cell, so the centres span the input as a real head's do.
* ``yolo_end2end``: ``(1, 10, 6)`` rows ``x1, y1, x2, y2, score, class``, zero-padded.
* classify: ``(1, C)`` probabilities.

The metadata is appended as Ultralytics' exporter does it (``zipfile.ZipFile(file, "a",
zipfile.ZIP_DEFLATED).writestr("metadata.json", json.dumps(metadata, indent=2))``), or, for
older exports, as ``temp_meta.txt`` holding ``str(metadata)``. Conversion needs TensorFlow;
:func:`cached_exports` builds them once and caches them in pytest's cache folder, keyed by
this file's bytes, so later sessions need no TensorFlow.

Every area takes the models from the session fixture ``ultralytics_models`` of
``tests/conftest.py`` and imports this module by name (``import ultralytics_exports as ux``:
that conftest puts the tests folder on ``sys.path``; the name clashes with no area's module).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

LABELS = ["person", "car", "dog"]
IMGSZ = 64
STRIDES = (8, 16, 32)
NAMES = ("v8", "v8_int8", "v8_pixels", "v8_t", "e2e", "e2e_int8", "cls", "plain")


def anchor_points() -> np.ndarray:
    """``(84, 2)`` candidate centres in input pixels, stride by stride, row-major (make_anchors)."""
    points = []
    for stride in STRIDES:
        cells = IMGSZ // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        points.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1))
    return np.concatenate(points).astype(np.float32)


#: The objects the detectors "see": (candidate index, class id, score, cx, cy, w, h in input pixels).
#: Candidate 11 repeats candidate 10's object, shifted by a pixel, at a lower score (IoU 0.85):
#: NMS at IoU 0.7 removes it. Candidate 70 is a "car" below the default confidence 0.25.
OBJECTS = [
    (10, 0, 0.90, 18.0, 28.0, 12.0, 16.0),
    (11, 0, 0.60, 19.0, 28.0, 12.0, 16.0),
    (66, 2, 0.80, 40.0, 36.0, 20.0, 14.0),
    (70, 1, 0.20, 50.0, 24.0, 8.0, 8.0),
]
#: What the default thresholds keep: (label, score, x1, y1, x2, y2 in input pixels), best first.
EXPECTED_DETECTIONS = [
    ("person", 0.90, 12.0, 20.0, 24.0, 36.0),
    ("dog", 0.80, 30.0, 29.0, 50.0, 43.0),
]
#: The end-to-end rows (already NMS'd by the "model"): the same two objects.
END2END_ROWS = 10
#: The classifier's probabilities: "car" wins.
CLASS_PROBS = [0.15, 0.7, 0.15]


def v8_output(pixels: bool = False, transposed: bool = False) -> np.ndarray:
    """The ``(4 + C, 84)`` (or transposed) output of the yolo_v8 stand-in."""
    points = anchor_points()
    rows = np.zeros((4 + len(LABELS), len(points)), np.float32)
    rows[0:2] = points.T
    rows[2:4] = 4.0  # a small box on every cell
    rows[4:] = 0.01
    for index, cls, score, cx, cy, w, h in OBJECTS:
        rows[0:4, index] = (cx, cy, w, h)
        rows[4 + cls, index] = score
    if not pixels:
        rows[0:4] /= IMGSZ
    return rows.T.copy() if transposed else rows


def end2end_output() -> np.ndarray:
    """The ``(10, 6)`` output of the end-to-end stand-in, boxes as fractions of the input."""
    rows = np.zeros((END2END_ROWS, 6), np.float32)
    for i, (label, score, x1, y1, x2, y2) in enumerate(EXPECTED_DETECTIONS):
        rows[i] = (x1 / IMGSZ, y1 / IMGSZ, x2 / IMGSZ, y2 / IMGSZ, score, LABELS.index(label))
    return rows


def metadata(task: str = "detect", end2end: bool = False, nms: bool = False, **extra: Any) -> dict[str, Any]:
    """An Ultralytics export's metadata document (the keys of ``Exporter.metadata``, 8.3 / 8.4)."""
    document = {
        "description": "Ultralytics YOLO11n model trained on coco.yaml",
        "author": "Ultralytics",
        "date": "2025-01-01T00:00:00",
        "version": "8.3.200",
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "stride": 32,
        "task": task,
        "batch": 1,
        "imgsz": [IMGSZ, IMGSZ],
        "names": dict(enumerate(LABELS)),
        "args": {"batch": 1, "half": False, "int8": False, "nms": nms},
        "channels": 3,
        "end2end": end2end,
    }
    document.update(extra)
    return document


def append_metadata(model: bytes, document: Any, member: str = "metadata.json") -> bytes:
    """``model`` with the metadata appended as a ZIP archive, as Ultralytics' exporter appends it
    (``metadata.json``: JSON; ``temp_meta.txt``: ``str(document)``, the older tflite_support way)."""
    buffer = io.BytesIO(model)
    buffer.seek(0, io.SEEK_END)
    text = json.dumps(document, indent=2) if member == "metadata.json" else str(document)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return buffer.getvalue()


def _constant_model(values: np.ndarray) -> Any:
    import keras
    from keras import layers

    image = keras.Input((IMGSZ, IMGSZ, 3), name="images")
    x = layers.GlobalAveragePooling2D(name="pool")(image)
    flat = layers.Dense(
        values.size,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(values.ravel().tolist()),
        name="head",
    )(x)
    out = layers.Reshape(values.shape, name="output0")(flat)
    return keras.Model(image, out)


def _convert(model: Any, int8: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(1)

        def representative() -> Any:
            for _ in range(8):
                yield [rng.random((1, IMGSZ, IMGSZ, 3), dtype=np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def build_exports(folder: Path) -> dict[str, Path]:
    """Write the stand-in exports into ``folder``; returns name -> path.

    ``v8`` (fractions, float I/O, metadata.json), ``v8_int8`` (the same, full-integer int8 I/O),
    ``v8_pixels`` (input pixels, float, ``temp_meta.txt`` of an older export), ``v8_t``
    (transposed, input pixels, float), ``e2e`` (end-to-end rows, float), ``e2e_int8``, ``cls``
    (classifier, float) and ``plain`` (``v8``'s model without metadata).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    json_style, old_style = "metadata.json", "temp_meta.txt"
    exports = {  # name: (constant output, int8 I/O, metadata, archive member)
        "v8": (v8_output(), False, metadata(), json_style),
        "v8_int8": (v8_output(), True, metadata(), json_style),
        "v8_pixels": (v8_output(pixels=True), False, metadata(), old_style),
        "v8_t": (v8_output(pixels=True, transposed=True), False, metadata(), json_style),
        "e2e": (end2end_output(), False, metadata(end2end=True), json_style),
        "e2e_int8": (end2end_output(), True, metadata(end2end=True), json_style),
        "cls": (np.array(CLASS_PROBS, np.float32), False, metadata(task="classify"), json_style),
    }
    paths = {}
    for name, (output, int8, document, member) in exports.items():
        data = _convert(_constant_model(output), int8)
        if name == "v8":
            paths["plain"] = _write(folder / "plain.tflite", data)
        paths[name] = _write(folder / f"{name}.tflite", append_metadata(data, document, member))
    return paths


def _write(path: Path, data: bytes) -> Path:
    """Write atomically: another test session may read the cache folder meanwhile."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def cached_exports(cache: pytest.Cache) -> dict[str, Path]:
    """:data:`NAMES` -> path of the stand-in exports, built on first use into pytest's cache
    folder (keyed by this file's bytes), then reused; building needs TensorFlow (skipped without)."""
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    folder = Path(cache.mkdir(f"edgecnn-ultralytics-exports-{key}"))
    paths = {name: folder / f"{name}.tflite" for name in NAMES}
    if not all(p.is_file() for p in paths.values()):
        pytest.importorskip("tensorflow")
        build_exports(folder)
    return paths
