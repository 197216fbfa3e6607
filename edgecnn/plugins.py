"""Plugins picked by a config's ``type`` key (Frigate-style): the registry sources and sinks share.

A plugin is a module of a package, named in the registry's module list, that defines one
pydantic config class with a ``type: Literal["<key>"]`` field and a way to build what the
config describes (each package says how, with the ``builder`` it gives :class:`Registry`).
Modules are imported on first use; one that fails to import (a missing optional package) is
logged and listed by :meth:`Registry.failed`, and only a config that asks for it gets an
error, naming why. A module in the list that does not exist (not written yet) is left out
quietly.
"""

from __future__ import annotations

import importlib
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Generic, TypeVar

from pydantic import BaseModel

from edgecnn.errors import ConfigError

log = logging.getLogger(__name__)

B = TypeVar("B")


@dataclass(frozen=True)
class Plugin(Generic[B]):
    """A loaded plugin: its type key, config class and builder."""

    type: str
    config: type[BaseModel]
    build: B


def type_key(cls: type[BaseModel]) -> str | None:
    """The ``Literal`` value of a config class's ``type`` field (None if it has none)."""
    field = cls.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return None
    values = typing.get_args(field.annotation)
    return str(values[0]) if len(values) == 1 else None


def defined_in(module: ModuleType, base: type) -> list[type]:
    """The subclasses of ``base`` that ``module`` defines (not those it imports)."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__
    ]


class Registry(Generic[B]):
    """The plugins of one package, by type key, imported on first use.

    Args:
        kind: what the plugins make, for messages (``source``, ``sink``).
        package: the package that holds the plugin modules.
        modules: the plugin modules' names in that package.
        builder: the builder of an imported plugin module; raises (any exception) when the
            module does not have what a plugin of this kind needs.
    """

    def __init__(
        self, kind: str, package: str, modules: tuple[str, ...], builder: Callable[[ModuleType], B]
    ) -> None:
        self.kind = kind
        self.package = package
        self.modules = modules
        self._builder = builder
        self._loaded: dict[str, Plugin[B]] | None = None
        self._failed: dict[str, str] = {}

    def plugins(self) -> dict[str, Plugin[B]]:
        """The plugins that imported, by type key."""
        return dict(self._load())

    def failed(self) -> dict[str, str]:
        """Plugins that failed to import, module name to the error."""
        self._load()
        return dict(self._failed)

    def config_types(self) -> tuple[type[BaseModel], ...]:
        """The config classes of the available plugins (for the device config's union)."""
        return tuple(p.config for p in self._load().values())

    def find(self, config: BaseModel) -> Plugin[B]:
        """The plugin for ``config``'s type.

        Raises:
            ConfigError: no plugin for that type (with the import error, if it failed).
        """
        key = str(getattr(config, "type", None))
        plugin = self._load().get(key)
        if plugin is None:
            reason = self._failed.get(key)
            detail = f": {reason}" if reason else ""
            raise ConfigError(f"{self.kind} type {key!r} is not available{detail}")
        return plugin

    def _load(self) -> dict[str, Plugin[B]]:
        if self._loaded is not None:
            return self._loaded
        loaded: dict[str, Plugin[B]] = {}
        for name in self.modules:
            try:
                module = importlib.import_module(f"{self.package}.{name}")
                configs = [c for c in defined_in(module, BaseModel) if type_key(c)]
                if len(configs) != 1:
                    raise TypeError(f"a {self.kind} plugin defines one config class with a type Literal")
                build = self._builder(module)
            except ModuleNotFoundError as exc:
                if exc.name == f"{self.package}.{name}":  # not written (yet): nothing to report
                    continue
                self._failed[name] = f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                self._failed[name] = f"{type(exc).__name__}: {exc}"
            else:
                key = type_key(configs[0])
                assert key is not None
                loaded[key] = Plugin(key, configs[0], build)
                continue
            log.warning("%s plugin %r is not available: %s", self.kind, name, self._failed[name])
        self._loaded = loaded
        return loaded
