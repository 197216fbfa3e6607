"""Frame sources, one module per kind, picked by the config's ``type`` key (Frigate-style).

Each module in :data:`PLUGINS` defines one pydantic config class with a
``type: Literal["<key>"]`` field and ``build(config) -> Source``. Modules are imported on
first use (:mod:`edgecnn.plugins`); one that fails to import (a missing optional package) is
logged and listed by :func:`failed`, and only a config that asks for it gets an error, naming why.

>>> from edgecnn.sources import build_source, plugins
>>> sorted(plugins())
['opencv', 'picamera2']
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from edgecnn.plugins import Plugin, Registry, type_key
from edgecnn.sources.base import EndOfStream, Frame, Source, SourceError, SourceSettings

#: modules of this package that are source plugins
PLUGINS: tuple[str, ...] = ("opencv", "picamera2")

SourcePlugin = Plugin[Callable[[Any], Source]]


def _builder(module: ModuleType) -> Callable[[Any], Source]:
    build = getattr(module, "build", None)
    if not callable(build):
        raise TypeError("a source plugin defines build(config)")
    return build


_registry: Registry[Callable[[Any], Source]] = Registry("source", __name__, PLUGINS, _builder)


def plugins() -> dict[str, SourcePlugin]:
    """The source plugins that imported, by type key."""
    return _registry.plugins()


def failed() -> dict[str, str]:
    """Plugins that failed to import, module name to the error."""
    return _registry.failed()


def config_types() -> tuple[type[BaseModel], ...]:
    """The config classes of the available plugins (for the device config's union)."""
    return _registry.config_types()


def build_source(config: BaseModel) -> Source:
    """Create (not start) the source a config describes.

    Raises:
        ConfigError: no plugin for the config's type, or the plugin rejects the config.
    """
    return _registry.find(config).build(config)


__all__ = [
    "PLUGINS",
    "EndOfStream",
    "Frame",
    "Source",
    "SourceError",
    "SourcePlugin",
    "SourceSettings",
    "build_source",
    "config_types",
    "failed",
    "plugins",
    "type_key",
]
