"""Fixtures for the daemon tests: tiny real models, a real video file, a fake camera, a
real ``NOTIFY_SOCKET``, and ``edgecnn run`` as a child process.

The models are real int8 TFLite files with the edgecnn spec embedded, built with
TensorFlow in this (test) process on the first run and cached in pytest's cache folder
(keyed by the builder's source), so later runs need no TensorFlow:

* ``det``: a 2-scale YOLO-style detector, 64x64 RGB in, strides 8 and 16, 2 anchors each,
  labels ``person, car``, random weights (it "detects" plenty at low thresholds);
* ``cls``: a classifier, 32x32 RGB in, labels ``cat, dog, bird``;
* ``det_plain``, ``cls_plain``: the same files without the edgecnn metadata.

The fake camera (:class:`FakeCamera`) stands in for the Pi camera, which cannot exist
here: it follows a script of reads (frames, errors, empty frames, wrong shapes, hangs)
and holds a real file descriptor while open, so leaks would show in ``/proc/self/fd``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec, ThresholdSpec
from edgecnn.sources.base import Frame, Source, SourceError

ROOT = Path(__file__).resolve().parents[2]
DET_ANCHORS = [[(10.0, 14.0), (23.0, 27.0)], [(37.0, 58.0), (81.0, 82.0)]]
VIDEO_SIZE = (160, 120)  # width, height: not the model's 64x64, so the letterbox mapping matters
VIDEO_FRAMES = 12


def _load_root_conftest() -> Any:
    # area conftests (no __init__.py) all import as "conftest"; load the root one by path
    spec = importlib.util.spec_from_file_location(
        "edgecnn_tests_root_conftest", Path(__file__).resolve().parents[1] / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


require_tool = _load_root_conftest().require_tool


# -- tiny models ------------------------------------------------------------------------------


def det_spec() -> ModelSpec:
    """The tiny detector's spec; its default thresholds keep random-weight boxes."""
    return ModelSpec(
        name="tiny_det",
        task="detect",
        labels=["person", "car"],
        input=InputSpec(width=64, height=64, color_order="RGB"),
        output=OutputSpec(layout="yolo_v3", anchors=DET_ANCHORS, strides=[8, 16]),
        thresholds=ThresholdSpec(conf=0.2, iou=0.5, max_det=50),
        created_by="edgecnn daemon tests",
    )


def cls_spec() -> ModelSpec:
    """The tiny classifier's spec."""
    return ModelSpec(
        name="tiny_cls",
        task="classify",
        labels=["cat", "dog", "bird"],
        input=InputSpec(width=32, height=32),
        output=OutputSpec(layout="classes", class_activation="softmax"),
        thresholds=ThresholdSpec(conf=0.0),
    )


def _build_models(folder: Path) -> None:
    """Build, int8-convert and spec-embed both models into ``folder`` (needs TensorFlow)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from keras import layers

    from edgecnn.quantize.metadata_writer import embed_spec

    keras.utils.set_random_seed(0)
    image = keras.Input((64, 64, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(image)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    s8 = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv3")(x)
    s16 = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv4")(s8)
    channels = len(DET_ANCHORS[0]) * (5 + 2)
    det = keras.Model(
        image,
        [layers.Conv2D(channels, 1, name="head_s8")(s8), layers.Conv2D(channels, 1, name="head_s16")(s16)],
    )
    image = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(image)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    cls = keras.Model(image, layers.Dense(3, name="logits")(x))

    for name, model, spec in (("det", det, det_spec()), ("cls", cls, cls_spec())):
        rng = np.random.default_rng(1)
        shape = (1, *model.input_shape[1:])

        def representative(shape: tuple[int, ...] = shape, rng: np.random.Generator = rng) -> Iterator[list]:
            for _ in range(16):
                yield [rng.random(shape, dtype=np.float32)]

        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = converter.convert()
        (folder / f"{name}.tflite").write_bytes(embed_spec(data, spec))
        (folder / f"{name}_plain.tflite").write_bytes(data)  # no edgecnn metadata


@pytest.fixture(scope="session")
def tiny_models(request: pytest.FixtureRequest) -> dict[str, Path]:
    """``{"det": path, "cls": path}``: int8 models with embedded specs, and ``det_plain``,
    ``cls_plain``: the same without metadata (built once, then cached)."""
    source = inspect.getsource(_build_models) + det_spec().to_json() + cls_spec().to_json()
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = Path(request.config.cache.mkdir(f"edgecnn-daemon-models-{key}"))
    paths = {name: folder / f"{name}.tflite" for name in ("det", "cls", "det_plain", "cls_plain")}
    if not all(p.is_file() for p in paths.values()):
        pytest.importorskip("tensorflow")
        _build_models(folder)
    return paths


@pytest.fixture(scope="session")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MJPG ``.avi`` of :data:`VIDEO_FRAMES` frames, 160x120, with a moving box."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, VIDEO_SIZE)
    assert writer.isOpened()
    rng = np.random.default_rng(3)
    for i in range(VIDEO_FRAMES):
        frame = rng.integers(0, 60, (VIDEO_SIZE[1], VIDEO_SIZE[0], 3), dtype=np.uint8)
        cv2.rectangle(frame, (10 + 8 * i, 20), (60 + 8 * i, 100), (40, 200, 230), -1)
        writer.write(frame)
    writer.release()
    return path


def write_config(folder: Path, text: str, name: str = "device.yaml") -> Path:
    """Write a YAML config file and return its path."""
    path = folder / name
    path.write_text(text)
    return path


# -- a fake camera ----------------------------------------------------------------------------


class FakeCamera(Source):
    """A scripted camera. ``script`` is consumed one step per read:

    ``"ok"`` a 48x64 BGR frame; ``"error"`` raises; ``"empty"`` an empty frame; ``"shape"``
    a (48, 64, 2) frame; ``"float"`` a float32 frame; ``"hang"`` blocks until
    :attr:`release` is set (a read that never returns, as a wedged driver does). After the
    script, reads give ``"ok"`` frames. ``open_fails`` makes the next starts raise. Each
    open camera holds a real fd (``/dev/null``).
    """

    live = True

    def __init__(self, shared: dict[str, Any]) -> None:
        self.shared = shared
        self.name = "fake-camera"
        self.fd: int | None = None

    def start(self) -> None:
        with self.shared["lock"]:
            self.shared["opens"] += 1
            if self.shared["open_fails"] > 0:
                self.shared["open_fails"] -= 1
                raise SourceError("no such camera")
        self.fd = os.open("/dev/null", os.O_RDONLY)

    def read(self) -> Frame:
        with self.shared["lock"]:
            step = self.shared["script"].pop(0) if self.shared["script"] else "ok"
            self.shared["reads"] += 1
        if self.shared["delay"]:
            time.sleep(self.shared["delay"])
        if step == "hang":
            self.shared["release"].wait()
            raise SourceError("the hung read returned")
        if step == "error":
            raise SourceError("camera unplugged")
        value = self.shared["reads"] % 256
        image = {
            "ok": np.full((48, 64, 3), value, np.uint8),
            "empty": np.zeros((0, 0, 3), np.uint8),
            "shape": np.zeros((48, 64, 2), np.uint8),
            "float": np.zeros((48, 64, 3), np.float32),
        }[step]
        return Frame(image=image, ts=time.time(), index=self.shared["reads"])

    def stop(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            with self.shared["lock"]:
                self.shared["closes"] += 1


@pytest.fixture
def fake_camera() -> Iterator[dict[str, Any]]:
    """Shared state of :class:`FakeCamera` instances; ``state["factory"]()`` makes one."""
    state: dict[str, Any] = {
        "lock": threading.Lock(),
        "script": [],
        "open_fails": 0,
        "opens": 0,
        "closes": 0,
        "reads": 0,
        "delay": 0.0,
        "release": threading.Event(),
    }
    state["factory"] = lambda: FakeCamera(state)
    yield state
    state["release"].set()  # let hung reads end


# -- sd_notify --------------------------------------------------------------------------------


class NotifyListener:
    """A real ``NOTIFY_SOCKET``: an abstract AF_UNIX datagram socket, as systemd's, recording
    each datagram as ``(monotonic time, {KEY: value})``."""

    def __init__(self) -> None:
        self.address = f"@edgecnn-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.address[1:])
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.hooks: list[Callable[[dict[str, str]], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            for hook in self.hooks:
                hook(fields)
            self.messages.append((time.monotonic(), fields))

    def times(self, key: str) -> list[float]:
        """When datagrams carrying ``key`` arrived."""
        return [t for t, fields in self.messages if key in fields]

    def statuses(self) -> list[str]:
        """Every ``STATUS=`` sent, in order."""
        return [fields["STATUS"] for _, fields in self.messages if "STATUS" in fields]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifyListener]:
    """A listening :class:`NotifyListener`."""
    listener = NotifyListener()
    yield listener
    listener.close()


# -- the CLI in a child process ---------------------------------------------------------------

# Imports run_cmd explicitly: the lead registers it in edgecnn.cli; this works before and after.
CLI = "import edgecnn.cli.run_cmd; from edgecnn.cli import main; main()"


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child ``edgecnn`` process."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for key in ("EDGECNN_DEBUG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID"):
        if extra is None or key not in extra:
            env.pop(key, None)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``edgecnn ARGS`` in a child process, to the end."""
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=cli_env(env), timeout=timeout
    )


def start_cli(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen:
    """``edgecnn ARGS`` in a child process, running."""
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        **kwargs,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSON-lines file (fails on a torn line)."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the file does not end with a complete line"
    return [json.loads(line) for line in text.splitlines()]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# Test modules take these helpers as fixtures: area conftests all import as "conftest", so
# ``from conftest import ...`` could pick another area's.


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """:func:`run_cli`."""
    return run_cli


@pytest.fixture
def cli_process() -> Callable[..., subprocess.Popen]:
    """:func:`start_cli`."""
    return start_cli


@pytest.fixture
def jsonl() -> Callable[[Path], list[dict[str, Any]]]:
    """:func:`read_jsonl`."""
    return read_jsonl


@pytest.fixture
def until() -> Callable[..., bool]:
    """:func:`wait_until`."""
    return wait_until


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., Path]:
    """:func:`write_config` into this test's folder."""
    return lambda text, name="device.yaml": write_config(tmp_path, text, name)
