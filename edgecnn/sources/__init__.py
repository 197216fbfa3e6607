"""Frame sources, one module per kind, picked by the config's ``type`` key (Frigate-style).

Each module in :data:`PLUGINS` defines one pydantic config class with a
``type: Literal["<key>"]`` field and ``build(config) -> Source``. Modules are imported on
first use; one that fails to import (a missing optional package) is logged and listed by
:func:`failed`, and only a config that asks for it gets an error, naming why.

>>> from edgecnn.sources import build_source, plugins
>>> sorted(plugins())
['opencv', 'picamera2']
"""

from __future__ import annotations

import importlib
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from edgecnn.errors import ConfigError
from edgecnn.sources.base import EndOfStream, Frame, Source, SourceError, SourceSettings

log = logging.getLogger(__name__)

#: modules of this package that are source plugins
PLUGINS: tuple[str, ...] = ("opencv", "picamera2")


@dataclass(frozen=True)
class SourcePlugin:
    """A loaded source plugin: its type key, config class and builder."""

    type: str
    config: type[BaseModel]
    build: Callable[[Any], Source]


_loaded: dict[str, SourcePlugin] = {}
_failed: dict[str, str] = {}


def type_key(cls: type[BaseModel]) -> str | None:
    """The ``Literal`` value of a config class's ``type`` field (None if it has none)."""
    field = cls.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return None
    values = typing.get_args(field.annotation)
    return str(values[0]) if len(values) == 1 else None


def _load() -> None:
    if _loaded or _failed:
        return
    for name in PLUGINS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
            configs = [
                obj
                for obj in vars(module).values()
                if isinstance(obj, type)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
                and type_key(obj)
            ]
            if len(configs) != 1 or not callable(getattr(module, "build", None)):
                raise TypeError("a source plugin defines one config class with a type Literal and build()")
        except Exception as exc:
            _failed[name] = f"{type(exc).__name__}: {exc}"
            log.warning("source plugin %r is not available: %s", name, _failed[name])
            continue
        key = type_key(configs[0])
        assert key is not None
        _loaded[key] = SourcePlugin(key, configs[0], module.build)


def plugins() -> dict[str, SourcePlugin]:
    """The source plugins that imported, by type key."""
    _load()
    return dict(_loaded)


def failed() -> dict[str, str]:
    """Plugins that failed to import, module name to the error."""
    _load()
    return dict(_failed)


def config_types() -> tuple[type[BaseModel], ...]:
    """The config classes of the available plugins (for the device config's union)."""
    return tuple(p.config for p in plugins().values())


def build_source(config: BaseModel) -> Source:
    """Create (not start) the source a config describes.

    Raises:
        ConfigError: no plugin for the config's type, or the plugin rejects the config.
    """
    key = getattr(config, "type", None)
    plugin = plugins().get(str(key))
    if plugin is None:
        reason = failed().get(str(key))
        raise ConfigError(f"source type {key!r} is not available" + (f": {reason}" if reason else ""))
    return plugin.build(config)


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
