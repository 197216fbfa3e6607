"""Fixtures for the quantisation tests: small real datasets, Keras run folders, calibration sets.

* ``digits_data``: scikit-learn's real handwritten digits (8x8, upscaled to 28x28 grey PNGs)
  as class folders, train 1257 / val 540 images;
* ``detect_data`` / ``classify_data``: deterministic synthetic sets (``write_synth_dataset``),
  64 px, 3 classes, 140 images (train 98, val 28, test 14);
* ``make_run(variant, data_yaml, epochs)``: a training-run folder (``model.keras``,
  ``spec.json``, ``labels.txt``) for a tiny registry variant, trained for a few epochs with
  plain Keras ``fit`` on the board's own preprocessing, or untrained with its batch-norm
  statistics set from the training images (at initialisation they are 0 and 1, and a deep
  MobileNet's outputs shrink to nothing);
* ``run_cli(*args)``: the Typer app in-process, with the quantisation commands registered;
* ``quantized(variant)``: ``calib build`` + ``quantize --data --report --max-drop`` through the
  CLI, once per registered tiny variant (settings: :func:`quant_case`), with its paths, CLI
  results and report.

Models are cached per session: each variant is built and trained once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner, Result

from edgecnn.architectures import get_model_info
from edgecnn.data import load_split, write_data_yaml
from edgecnn.data.pipeline import iter_preprocessed
from edgecnn.data.synth import write_synth_dataset
from edgecnn.quantize.calibration import MIN_IMAGES

DIGIT_NAMES = [str(d) for d in range(10)]


@pytest.fixture(autouse=True)
def _clear_keras() -> Iterator[None]:
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits as ``train/<digit>/*.png`` and ``val/<digit>/*.png`` (70/30, fixed order); the data.yaml."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits")
    order = np.random.default_rng(0).permutation(len(digits.target))
    n_train = int(0.7 * len(order))
    for k, i in enumerate(order):
        split = "train" if k < n_train else "val"
        folder = root / split / DIGIT_NAMES[digits.target[i]]
        folder.mkdir(parents=True, exist_ok=True)
        image = cv2.resize(
            (digits.images[i] * 15.9).astype(np.uint8), (28, 28), interpolation=cv2.INTER_LINEAR
        )
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    return write_data_yaml(
        root / "data.yaml", DIGIT_NAMES, {"train": "train", "val": "val"}, format="folders", task="classify"
    )


@pytest.fixture(scope="session")
def detect_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic 3-class detection set, 64 px (COCO JSON); the data.yaml."""
    return write_synth_dataset(tmp_path_factory.mktemp("det"), "detect", n=140, imgsz=64, num_classes=3)


@pytest.fixture(scope="session")
def classify_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic 3-class classification set, 64 px (class folders); the data.yaml."""
    return write_synth_dataset(tmp_path_factory.mktemp("cls"), "classify", n=140, imgsz=64, num_classes=3)


def _train_arrays(data_yaml: Path, spec: Any, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    split = load_split(data_yaml, "train")
    images, labels = [], []
    for k, (tensor, record, _) in enumerate(iter_preprocessed(split, spec.input)):
        if limit is not None and k >= limit:
            break
        images.append(tensor[0])
        labels.append(-1 if record.label is None else record.label)
    return np.stack(images), np.asarray(labels)


def settle_batch_norm(model: Any, images: np.ndarray) -> None:
    """Set every batch norm's moving statistics to those of ``images`` (one training-mode pass)."""
    from keras import layers

    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(norms, saved, strict=True):
        layer.momentum = momentum


@pytest.fixture(scope="session")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Path, int], Path]:
    """``make_run(variant, data_yaml, epochs=0) -> model.keras``: a cached training-run folder.

    ``epochs > 0`` trains a classifier with Keras ``fit`` (Adam, cross-entropy on logits);
    ``epochs == 0`` leaves the weights random and only settles batch norm.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cache: dict[tuple[str, str, int], Path] = {}

    def make(variant: str, data_yaml: Path, epochs: int = 0) -> Path:
        key = (variant, str(data_yaml), epochs)
        if key in cache:
            return cache[key]
        import keras

        from edgecnn.architectures import build_model, get_model_info

        keras.utils.set_random_seed(0)
        names = load_split(data_yaml, "train").names
        info = get_model_info(variant)
        spec = info.model_spec(names)
        model = build_model(variant, num_classes=len(names))
        images, labels = _train_arrays(data_yaml, spec)
        if epochs > 0:
            model.compile(
                optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            model.fit(images, labels, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
        else:
            settle_batch_norm(model, images[:64])
        folder = tmp_path_factory.mktemp(f"run_{variant}")
        model.save(folder / "model.keras")
        spec.save(folder / "spec.json")
        (folder / "labels.txt").write_text("\n".join(names) + "\n")
        cache[key] = folder / "model.keras"
        return cache[key]

    return make


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., Result]:
    """``run_cli(*args)``: invoke the CLI in-process; output and stderr are kept apart."""
    import edgecnn.cli.bench_cmd
    import edgecnn.cli.calib_cmd
    import edgecnn.cli.quantize_cmd  # noqa: F401
    from edgecnn.cli.app import app

    runner = CliRunner()

    def run(*args: str | Path) -> Result:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


#: Calibration images of the untrained variants: two per class of the synthetic sets. Below the
#: CLI's minimum of 50, so the set is built with ``--force``: the ranges are rough, but these
#: models check the plumbing, not int8 quality, and every image costs time in both calibrating
#: conversions (the model's and the debugger's).
SMALL_CALIB = 6
#: ``--max-drop`` of the untrained variants: no drop exceeds 100 points, so the gate passes
#: exactly when the drop can be measured; the trained LeNet has a real bound.
ANY_DROP = 100.0


@dataclass(frozen=True)
class QuantCase:
    """How :func:`quantized` prepares and quantises one variant.

    Attributes:
        data: the dataset fixture (``digits_data``, ``detect_data`` or ``classify_data``).
        epochs: training epochs (:func:`make_run`; 0: random weights, batch norm settled).
        calib_images: ``calib build --n`` (``--force`` below the CLI's minimum).
        max_drop: the ``quantize --max-drop`` gate.
    """

    data: str
    epochs: int = 0
    calib_images: int = SMALL_CALIB
    max_drop: float = ANY_DROP


#: Variants with settings of their own. LeNet is trained on the real digits with a full
#: 60-image calibration set: its int8 quality is asserted, and the gate has a real bound.
CASES = {"lenet_test": QuantCase("digits_data", epochs=3, calib_images=60, max_drop=3.0)}


def quant_case(variant: str) -> QuantCase:
    """The :class:`QuantCase` of a registered variant: its own in ``CASES``, else untrained on the
    synthetic set of its task (grey classifiers on the digits)."""
    if variant in CASES:
        return CASES[variant]
    info = get_model_info(variant)
    if info.task == "detect":
        return QuantCase("detect_data")
    return QuantCase("classify_data" if info.channels == 3 else "digits_data")


@pytest.fixture(scope="session")
def quantized(
    request: pytest.FixtureRequest,
    make_run: Callable[..., Path],
    run_cli: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], dict[str, Any]]:
    """``quantized(variant)``: runs the two commands once per variant and returns the paths and results."""
    done: dict[str, dict[str, Any]] = {}

    def get(variant: str) -> dict[str, Any]:
        if variant in done:
            return done[variant]
        case = quant_case(variant)
        data = request.getfixturevalue(case.data)
        model = make_run(variant, data, case.epochs)
        work = tmp_path_factory.mktemp(f"q_{variant}")
        calib_args = ["calib", "build", "--data", data, "--out", work / "calib", "--n", case.calib_images]
        if case.calib_images < MIN_IMAGES:
            calib_args.append("--force")
        calib = run_cli(*calib_args)
        assert calib.exit_code == 0, calib.output
        args = ["quantize", model, "--calib", work / "calib", "--out", work / "model_int8.tflite"]
        args += ["--data", data, "--report", work / "report", "--max-drop", str(case.max_drop)]
        result = run_cli(*args)
        done[variant] = {
            "case": case,
            "data": data,
            "model": model,
            "work": work,
            "tflite": work / "model_int8.tflite",
            "calib_result": calib,
            "result": result,
            "report": json.loads((work / "report" / "report.json").read_text()),
        }
        return done[variant]

    return get
