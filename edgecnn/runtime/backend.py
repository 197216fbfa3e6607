"""Pick the TFLite interpreter package: ai_edge_litert, else tflite_runtime, else tensorflow.

``ai_edge_litert`` (LiteRT) is Google's current interpreter package and what the board
installs; ``tflite_runtime`` is its predecessor (last release 2.14, CPython <= 3.11);
``tensorflow.lite`` works on a workstation but drags in all of TensorFlow. All three share
the same ``Interpreter`` API. The environment variable ``EDGECNN_TFLITE_BACKEND`` (one of
:data:`BACKENDS`, or ``auto``) forces one. The choice is logged at DEBUG (``edgecnn -v``):
an INFO line would come before the one-line error of a command that then fails.

Nothing here imports a backend at import time: TensorFlow is imported only when it is
the chosen (or the last remaining) backend.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from edgecnn._stderr import captured_stderr_fd
from edgecnn.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

BACKEND_ENV = "EDGECNN_TFLITE_BACKEND"
#: Backends in the order they are tried.
BACKENDS: tuple[str, ...] = ("ai_edge_litert", "tflite_runtime", "tensorflow")

# The module to import per backend, and how to get the Interpreter class from it.
_SOURCES: dict[str, tuple[str, Callable[[ModuleType], Any]]] = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", lambda m: m.Interpreter),
    "tflite_runtime": ("tflite_runtime.interpreter", lambda m: m.Interpreter),
    "tensorflow": ("tensorflow", lambda m: m.lite.Interpreter),
}
_PACKAGES = {
    "ai_edge_litert": "ai-edge-litert",
    "tflite_runtime": "tflite-runtime",
    "tensorflow": "tensorflow",
}

#: Most interpreter threads edgecnn asks for (LiteRT segfaulted with 100000).
MAX_THREADS = 64

#: What LiteRT writes from C++ to file descriptor 2 when it applies its default XNNPACK
#: delegate (on the first ``allocate_tensors``): a notice, not news to a user.
XNNPACK_NOTICE = re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$")

# LiteRT's Python error reporter appends each message to the one before without a separator
# ("... in XNNPACK delegateunsupported datatype ...Node number 32 (...) failed to prepare."):
# where one of its messages starts right after a character that is no space or "/".
_MESSAGE_START = re.compile(
    r"(?<=[^\s/])(?=Node number \d|Tensor \d+ is |tflite/|tensorflow/|Restored original execution plan"
    r"|Didn't find op|Encountered unresolved custom op|Registration failed|Failed to |failed to "
    r"|unsupported )"
)

# Indirection so tests can pretend a package is missing.
_import_module: Callable[[str], ModuleType] = importlib.import_module


@dataclass(frozen=True)
class Backend:
    """An importable interpreter package."""

    name: str
    interpreter_class: Any
    version: str

    def make_interpreter(self, model_path: str, num_threads: int | None = None) -> Any:
        """Create an interpreter for the file at ``model_path`` (tensors not yet allocated)."""
        return self.interpreter_class(model_path=model_path, num_threads=num_threads)

    def load_interpreter(self, model_path: str, num_threads: int | None = None) -> Any:
        """Create an interpreter and allocate its tensors, without LiteRT's XNNPACK notice on
        stderr (:data:`XNNPACK_NOTICE`; every other line it writes still shows)."""
        with captured_stderr_fd(XNNPACK_NOTICE):
            interpreter = self.make_interpreter(model_path, num_threads)
            interpreter.allocate_tensors()
        return interpreter


def interpreter_error(exc: BaseException) -> str:
    """An interpreter's exception as one line: each of its messages, joined by ``"; "``."""
    parts = [
        part.strip()
        for line in str(exc).splitlines()
        for part in _MESSAGE_START.split(line)
        if part.strip()
    ]
    if not parts:
        return type(exc).__name__
    return "; ".join([*(p.removesuffix(".") for p in parts[:-1]), parts[-1]])


def _load(name: str) -> Backend:
    module_name, get_class = _SOURCES[name]
    module = _import_module(module_name)
    top = _import_module(name) if module_name != name else module
    return Backend(name, get_class(module), str(getattr(top, "__version__", "unknown")))


def _reason(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def requested_backend() -> str | None:
    """The backend forced by ``EDGECNN_TFLITE_BACKEND``, or None for automatic choice.

    Raises:
        ConfigError: the variable names no known backend.
    """
    value = os.environ.get(BACKEND_ENV, "").strip()
    if value in ("", "auto"):
        return None
    if value not in BACKENDS:
        raise ConfigError(f"{BACKEND_ENV}={value!r}: expected one of auto, {', '.join(BACKENDS)}")
    return value


def load_backend(name: str | None = None) -> Backend:
    """Import the interpreter package ``name``, or the first importable one of :data:`BACKENDS`.

    Args:
        name: a backend from :data:`BACKENDS`; None follows ``EDGECNN_TFLITE_BACKEND`` and
            then the default order.

    Raises:
        ModelError: the requested backend, or every backend, cannot be imported.
        ConfigError: ``name`` or the environment variable names no known backend.
    """
    if name is not None and name not in BACKENDS:
        raise ConfigError(f"unknown TFLite backend {name!r}: expected one of {', '.join(BACKENDS)}")
    forced = name or requested_backend()
    if forced is not None:
        try:
            backend = _load(forced)
        except Exception as exc:
            how = "requested" if name else f"requested by {BACKEND_ENV}"
            raise ModelError(
                f"TFLite backend {forced} was {how} but cannot be imported ({_reason(exc)}): "
                f"pip install {_PACKAGES[forced]}"
            ) from None
        logger.debug("TFLite backend: %s %s", backend.name, backend.version)
        return backend
    for candidate in BACKENDS:
        try:
            backend = _load(candidate)
        except ImportError as exc:
            logger.debug("TFLite backend %s not available: %s", candidate, _reason(exc))
            continue
        except Exception as exc:  # installed but broken (e.g. a wheel for another glibc)
            logger.warning("TFLite backend %s is installed but failed to import: %s", candidate, _reason(exc))
            continue
        logger.debug("TFLite backend: %s %s", backend.name, backend.version)
        return backend
    raise ModelError(
        f"no TFLite interpreter is installed (tried {', '.join(BACKENDS)}): pip install ai-edge-litert"
    )
