"""Lazy package exports (PEP 562): a name is imported from its module on first access.

A package ``__init__`` lists what it exports and where each name lives, and gets the module
``__getattr__`` / ``__dir__`` from :func:`lazy_exports`, so importing the package stays cheap
(no numpy, OpenCV or TensorFlow until a name that needs them is used).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` exporting ``exports`` (name -> module).

    Example:
        >>> __all__, __getattr__, __dir__ = lazy_exports(__name__, {"Daemon": "edgecnn.daemon.loop"})
    """
    names = sorted(exports)

    def __getattr__(name: str) -> Any:  # noqa: N807
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # later accesses skip this function
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*vars(sys.modules[package]), *names})

    return names, __getattr__, __dir__
