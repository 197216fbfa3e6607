"""Keep TensorFlow's start-up chatter out of the CLI's stderr.

TensorFlow 2.21 writes several lines from C++ while it is imported (oneDNN, "Could not find
cuda drivers", CPU features) and one more when it first lists devices on a machine without
a GPU ("failed call to cuInit"). They are written before its logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` does not hide them. :func:`install` makes the first
``import tensorflow`` run with file descriptor 2 sent to a temporary file, lists the devices
inside the same window, and then writes back every captured line that is not one of those
known notices: a real error during import still reaches the user.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from edgecnn._stderr import TF_NOTICE, drop_lines
from edgecnn._stderr import captured_stderr_fd as _captured

#: Lines TensorFlow prints at start-up that say nothing to an edgecnn user.
NOTICE = TF_NOTICE


def install() -> None:
    """Quieten the first ``import tensorflow`` of this process (no-op if it already happened)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


def filter_notices(text: str) -> str:
    """``text`` without TensorFlow's start-up notices (see :data:`NOTICE`)."""
    return drop_lines(text, NOTICE)


def captured_stderr_fd() -> contextlib.AbstractContextManager[None]:
    """Send file descriptor 2 to a temporary file for the block, then write back what is not
    a TensorFlow notice."""
    return _captured(NOTICE)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with a loader that imports it inside the capture."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:  # get_filename, is_package, resource readers, ...
        return getattr(self._inner, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with captured_stderr_fd():
            self._inner.exec_module(module)
            with contextlib.suppress(Exception):  # the cuInit notice comes with the first device query
                module.config.list_physical_devices()
