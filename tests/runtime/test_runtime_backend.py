"""Interpreter backend choice: ai_edge_litert, else tflite_runtime, else tensorflow."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from edgecnn.errors import ConfigError, ModelError
from edgecnn.runtime import backend as backend_module
from edgecnn.runtime.backend import BACKEND_ENV, BACKENDS, Backend, interpreter_error, load_backend
from edgecnn.runtime.interpreter import TFLiteModel


class _FakeInterpreter:
    def __init__(self, model_path: str, num_threads: int | None = None) -> None:
        self.model_path = model_path
        self.num_threads = num_threads


def _fake_modules(missing: set[str], broken: set[str] | None = None):
    """An import function where the backends in ``missing`` are not installed, those in
    ``broken`` fail with OSError, and the others are fakes; it records what was asked."""
    asked: list[str] = []
    broken = broken or set()

    def fake_import(name: str) -> ModuleType:
        asked.append(name)
        top = name.split(".")[0]
        if top in missing:
            raise ModuleNotFoundError(f"No module named {top!r}")
        if top in broken:
            raise OSError("libc.so.6: version `GLIBC_2.38' not found")
        interpreter = SimpleNamespace(Interpreter=_FakeInterpreter)
        return SimpleNamespace(__version__=f"{top}-fake", lite=interpreter, **vars(interpreter))

    return fake_import, asked


@pytest.fixture(autouse=True)
def _no_forced_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)


def test_default_is_ai_edge_litert_and_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG (``edgecnn -v``), not INFO: a command that then fails must print one line only."""
    with caplog.at_level(logging.DEBUG, logger="edgecnn.runtime.backend"):
        backend = load_backend()
    assert backend.name == "ai_edge_litert"
    assert backend.interpreter_class is importlib.import_module("ai_edge_litert.interpreter").Interpreter
    assert any(
        r.levelno == logging.DEBUG and "TFLite backend: ai_edge_litert" in r.message for r in caplog.records
    )
    assert [r.message for r in caplog.records if r.levelno >= logging.INFO] == []


def test_order_is_respected_when_packages_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_import, asked = _fake_modules(missing={"ai_edge_litert"})
    monkeypatch.setattr(backend_module, "_import_module", fake_import)
    backend = load_backend()
    assert (backend.name, backend.version) == ("tflite_runtime", "tflite_runtime-fake")
    assert asked[0] == "ai_edge_litert.interpreter" and asked[1].startswith("tflite_runtime")
    assert not any(name.startswith("tensorflow") for name in asked)

    fake_import, asked = _fake_modules(missing={"ai_edge_litert", "tflite_runtime"})
    monkeypatch.setattr(backend_module, "_import_module", fake_import)
    backend = load_backend()
    assert backend.name == "tensorflow"
    assert backend.interpreter_class is _FakeInterpreter  # tensorflow.lite.Interpreter
    assert [name.split(".")[0] for name in asked] == ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    interpreter = backend.make_interpreter("m.tflite", num_threads=3)
    assert (interpreter.model_path, interpreter.num_threads) == ("m.tflite", 3)


def test_a_broken_install_is_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_import, _ = _fake_modules(missing={"tflite_runtime"}, broken={"ai_edge_litert"})
    monkeypatch.setattr(backend_module, "_import_module", fake_import)
    with caplog.at_level(logging.INFO, logger="edgecnn.runtime.backend"):
        assert load_backend().name == "tensorflow"
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ai_edge_litert" in warnings[0] and "GLIBC_2.38" in warnings[0]


def test_no_backend_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_import, _ = _fake_modules(missing=set(BACKENDS))
    monkeypatch.setattr(backend_module, "_import_module", fake_import)
    with pytest.raises(
        ModelError, match=r"^no TFLite interpreter is installed .*pip install ai-edge-litert$"
    ):
        load_backend()


def test_environment_variable_forces_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_import, asked = _fake_modules(missing=set())
    monkeypatch.setattr(backend_module, "_import_module", fake_import)
    monkeypatch.setenv(BACKEND_ENV, "tflite_runtime")
    assert load_backend().name == "tflite_runtime"
    assert not any(name.startswith("ai_edge_litert") for name in asked)
    assert load_backend("tensorflow").name == "tensorflow"  # an explicit argument wins
    monkeypatch.setenv(BACKEND_ENV, "auto")
    assert load_backend().name == "ai_edge_litert"


def test_forced_backend_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_import, _ = _fake_modules(missing={"tflite_runtime"})
    monkeypatch.setattr(backend_module, "_import_module", fake_import)
    monkeypatch.setenv(BACKEND_ENV, "tflite_runtime")
    with pytest.raises(
        ModelError,
        match=rf"tflite_runtime was requested by {BACKEND_ENV} but cannot be imported "
        r".*: pip install tflite-runtime",
    ):
        load_backend()
    monkeypatch.setenv(BACKEND_ENV, "onnxruntime")
    with pytest.raises(
        ConfigError, match=rf"{BACKEND_ENV}='onnxruntime': expected one of auto, ai_edge_litert"
    ):
        load_backend()
    with pytest.raises(ConfigError, match="unknown TFLite backend 'litert'"):
        load_backend("litert")


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore::UserWarning:tensorflow.lite.python.interpreter")  # "deprecated"
def test_forcing_tensorflow_runs_the_model(
    monkeypatch: pytest.MonkeyPatch, tiny_tflite: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = tiny_tflite["det_int8"]
    default = TFLiteModel(path)
    monkeypatch.setenv(BACKEND_ENV, "tensorflow")
    with caplog.at_level(logging.DEBUG, logger="edgecnn.runtime.backend"):
        forced = TFLiteModel(path, num_threads=2)
    assert (default.backend, forced.backend) == ("ai_edge_litert", "tensorflow")
    assert any("TFLite backend: tensorflow" in r.message for r in caplog.records)
    x = np.random.default_rng(3).random((1, 64, 64, 3), dtype=np.float32)
    for a, b in zip(default.run(x), forced.run(x), strict=True):
        np.testing.assert_array_equal(a, b)


class _NoisyInterpreter:
    """Writes LiteRT's XNNPACK notice and a line that matters to file descriptor 2, as C++ does."""

    def __init__(self, model_path: str, num_threads: int | None = None) -> None:
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")

    def allocate_tensors(self) -> None:
        os.write(2, b"ERROR: something that matters\n")


def test_load_interpreter_drops_only_the_xnnpack_notice(capfd: pytest.CaptureFixture[str]) -> None:
    Backend("fake", _NoisyInterpreter, "1").load_interpreter("m.tflite")
    assert capfd.readouterr().err == "ERROR: something that matters\n"


LOAD_IN_FRESH_PROCESS = (
    "import sys; from edgecnn.runtime.interpreter import TFLiteModel; TFLiteModel(sys.argv[1])"
)


@pytest.mark.tf
def test_loading_a_real_model_writes_nothing_to_stderr(tiny_tflite: dict[str, Path]) -> None:
    """LiteRT's C++ ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` comes on the first
    allocate_tensors: it must not precede a command's output or its one-line error."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop(BACKEND_ENV, None)
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_IN_FRESH_PROCESS, str(tiny_tflite["det_int8"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (  # LiteRT 2.3 on a tensor of a type XNNPACK does not take
            "unsupported zero-point value (-107) for UINT8 tensor 30 in XNNPACK delegateunsupported datatype "
            "(UINT8) of tensor 30 in XNNPACK delegatefailed to create XNNPACK Value for tensor 30Node number "
            "32 (TfLiteXNNPackDelegate) failed to prepare.",
            "unsupported zero-point value (-107) for UINT8 tensor 30 in XNNPACK delegate; "
            "unsupported datatype (UINT8) of tensor 30 in XNNPACK delegate; "
            "failed to create XNNPACK Value for tensor 30; "
            "Node number 32 (TfLiteXNNPackDelegate) failed to prepare.",
        ),
        (
            "tflite/core/subgraph.cc:1965 required_bytes <= bytes was not true.Tensor 5 is invalidly "
            "specified in schema.\n",
            "tflite/core/subgraph.cc:1965 required_bytes <= bytes was not true; Tensor 5 is invalidly "
            "specified in schema.",
        ),
        (
            "tflite/kernels/conv.cc:416 bias->type != kTfLiteInt32 (STRING != INT32)Node number 9 (CONV_2D) "
            "failed to prepare.",
            "tflite/kernels/conv.cc:416 bias->type != kTfLiteInt32 (STRING != INT32); "
            "Node number 9 (CONV_2D) failed to prepare.",
        ),
        ("first line\n\n  second line  ", "first line; second line"),
        ("Op builtin_code out of range: 9999. Are you using old TFLite binary with newer model?",
         "Op builtin_code out of range: 9999. Are you using old TFLite binary with newer model?"),
        ("", "RuntimeError"),
    ],
)
def test_interpreter_messages_are_separated(message: str, expected: str) -> None:
    """LiteRT's error reporter appends its messages to each other without a separator."""
    assert interpreter_error(RuntimeError(message)) == expected
