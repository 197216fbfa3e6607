"""Sinks, one module per output, picked by the config's ``type`` key (Frigate-style).

Each module in :data:`PLUGINS` defines one pydantic config class with a
``type: Literal["<key>"]`` field, and either ``build(config, context) -> Sink`` or one
:class:`~edgecnn.sinks.base.Sink` subclass taking ``(config, **context fields it names)``
(see :class:`~edgecnn.sinks.base.SinkContext`). Modules are imported on first use; one
that fails to import is logged and listed by :func:`failed`, and only a config that asks
for it gets an error, naming why.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from edgecnn.errors import ConfigError
from edgecnn.sinks.base import Detection, FrameResult, Sink, SinkContext
from edgecnn.sources import type_key

log = logging.getLogger(__name__)

#: modules of this package that are sink plugins
PLUGINS: tuple[str, ...] = ("jsonl", "mqtt", "http", "snapshots", "annotated")


@dataclass(frozen=True)
class SinkPlugin:
    """A loaded sink plugin: its type key, config class and builder."""

    type: str
    config: type[BaseModel]
    build: Callable[[Any, SinkContext], Sink]


_loaded: dict[str, SinkPlugin] = {}
_failed: dict[str, str] = {}


def _defined_in(module: Any, base: type) -> list[type]:
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__
    ]


def _builder(module: Any) -> Callable[[Any, SinkContext], Sink]:
    """``module.build`` (called with the context if it takes one), else the Sink subclass."""
    build = getattr(module, "build", None)
    if callable(build):
        takes_context = len(inspect.signature(build).parameters) >= 2
        return (
            (lambda config, context: build(config, context))
            if takes_context
            else (lambda config, _context: build(config))
        )
    classes = [c for c in _defined_in(module, Sink) if not inspect.isabstract(c)]
    if len(classes) != 1:
        raise TypeError("a sink plugin defines build(config, context) or exactly one Sink subclass")
    cls = classes[0]
    wanted = set(inspect.signature(cls).parameters)
    fields = [f.name for f in dataclasses.fields(SinkContext) if f.name in wanted]

    def construct(config: Any, context: SinkContext) -> Sink:
        return cls(config, **{name: getattr(context, name) for name in fields})

    return construct


def _load() -> None:
    if _loaded or _failed:
        return
    for name in PLUGINS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
            configs = [c for c in _defined_in(module, BaseModel) if type_key(c)]
            if len(configs) != 1:
                raise TypeError("a sink plugin defines one config class with a type Literal")
            builder = _builder(module)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":  # not written (yet): nothing to report
                continue
            _failed[name] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            _failed[name] = f"{type(exc).__name__}: {exc}"
        else:
            key = type_key(configs[0])
            assert key is not None
            _loaded[key] = SinkPlugin(key, configs[0], builder)
            continue
        log.warning("sink plugin %r is not available: %s", name, _failed[name])


def plugins() -> dict[str, SinkPlugin]:
    """The sink plugins that imported, by type key."""
    _load()
    return dict(_loaded)


def failed() -> dict[str, str]:
    """Plugins that failed to import, module name to the error."""
    _load()
    return dict(_failed)


def config_types() -> tuple[type[BaseModel], ...]:
    """The config classes of the available plugins (for the device config's union)."""
    return tuple(p.config for p in plugins().values())


def build_sink(config: BaseModel, context: SinkContext) -> Sink:
    """Create (not start) the sink a config describes.

    Raises:
        ConfigError: no plugin for the config's type.
    """
    key = str(getattr(config, "type", None))
    plugin = plugins().get(key)
    if plugin is None:
        reason = failed().get(key)
        raise ConfigError(f"sink type {key!r} is not available" + (f": {reason}" if reason else ""))
    return plugin.build(config, context)


__all__ = [
    "PLUGINS",
    "Detection",
    "FrameResult",
    "Sink",
    "SinkContext",
    "SinkPlugin",
    "build_sink",
    "config_types",
    "failed",
    "plugins",
]
