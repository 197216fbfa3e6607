"""Sinks, one module per output, picked by the config's ``type`` key (Frigate-style).

Each module in :data:`PLUGINS` defines one pydantic config class with a
``type: Literal["<key>"]`` field, and either ``build(config, context) -> Sink`` or one
:class:`~edgecnn.sinks.base.Sink` subclass taking ``(config, **context fields it names)``
(see :class:`~edgecnn.sinks.base.SinkContext`). Modules are imported on first use
(:mod:`edgecnn.plugins`); one that fails to import is logged and listed by :func:`failed`,
and only a config that asks for it gets an error, naming why.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from edgecnn.plugins import Plugin, Registry, defined_in
from edgecnn.sinks.base import Detection, FrameResult, Sink, SinkContext

#: modules of this package that are sink plugins
PLUGINS: tuple[str, ...] = ("jsonl", "mqtt", "http", "snapshots", "annotated")

SinkPlugin = Plugin[Callable[[Any, SinkContext], Sink]]


def _builder(module: ModuleType) -> Callable[[Any, SinkContext], Sink]:
    """``module.build`` (called with the context if it takes one), else the Sink subclass."""
    build = getattr(module, "build", None)
    if callable(build):
        takes_context = len(inspect.signature(build).parameters) >= 2
        return (
            (lambda config, context: build(config, context))
            if takes_context
            else (lambda config, _context: build(config))
        )
    classes = [c for c in defined_in(module, Sink) if not inspect.isabstract(c)]
    if len(classes) != 1:
        raise TypeError("a sink plugin defines build(config, context) or exactly one Sink subclass")
    cls = classes[0]
    wanted = set(inspect.signature(cls).parameters)
    fields = [f.name for f in dataclasses.fields(SinkContext) if f.name in wanted]

    def construct(config: Any, context: SinkContext) -> Sink:
        return cls(config, **{name: getattr(context, name) for name in fields})

    return construct


_registry: Registry[Callable[[Any, SinkContext], Sink]] = Registry("sink", __name__, PLUGINS, _builder)


def plugins() -> dict[str, SinkPlugin]:
    """The sink plugins that imported, by type key."""
    return _registry.plugins()


def failed() -> dict[str, str]:
    """Plugins that failed to import, module name to the error."""
    return _registry.failed()


def config_types() -> tuple[type[BaseModel], ...]:
    """The config classes of the available plugins (for the device config's union)."""
    return _registry.config_types()


def build_sink(config: BaseModel, context: SinkContext) -> Sink:
    """Create (not start) the sink a config describes.

    Raises:
        ConfigError: no plugin for the config's type.
    """
    return _registry.find(config).build(config, context)


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
