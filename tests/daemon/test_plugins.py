"""The plugin registry that sources and sinks share (edgecnn/plugins.py), on a package made here."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from edgecnn.errors import ConfigError
from edgecnn.plugins import Registry

GOOD = '''
from typing import Literal
from pydantic import BaseModel

class GoodConfig(BaseModel):
    type: Literal["good"] = "good"
    size: int = 1

def build(config):
    return ("built", config.size)
'''

BROKEN = "import edgecnn_no_such_dependency\n"

TWO_CONFIGS = '''
from typing import Literal
from pydantic import BaseModel

class A(BaseModel):
    type: Literal["a"] = "a"

class B(BaseModel):
    type: Literal["b"] = "b"

def build(config):
    return None
'''


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "edgecnn_test_plugins"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "good.py").write_text(GOOD)
    (root / "broken.py").write_text(BROKEN)
    (root / "two.py").write_text(TWO_CONFIGS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root.name
    for name in [m for m in sys.modules if m.startswith(root.name)]:
        del sys.modules[name]


def _build(module: ModuleType) -> object:
    return module.build


def test_registry_loads_reports_and_finds(package: str, caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry("widget", package, ("good", "broken", "two", "not_written"), _build)
    plugins = registry.plugins()
    assert list(plugins) == ["good"]
    config = plugins["good"].config(size=3)
    assert registry.find(config).build(config) == ("built", 3)
    assert registry.config_types() == (plugins["good"].config,)
    failed = registry.failed()
    assert set(failed) == {"broken", "two"}  # a module that does not exist is not reported
    assert failed["broken"] == "ModuleNotFoundError: No module named 'edgecnn_no_such_dependency'"
    assert "one config class" in failed["two"]
    assert [r.getMessage() for r in caplog.records if "not available" in r.getMessage()] == [
        f"widget plugin 'broken' is not available: {failed['broken']}",
        f"widget plugin 'two' is not available: {failed['two']}",
    ]
    # A config for a plugin that failed names why; an unknown type says only that.
    broken_config = type("Cfg", (), {"type": "broken"})()
    with pytest.raises(ConfigError, match=r"^widget type 'broken' is not available: ModuleNotFound"):
        registry.find(broken_config)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^widget type 'other' is not available$"):
        registry.find(type("Cfg", (), {"type": "other"})())  # type: ignore[arg-type]
    # Modules are imported once.
    assert registry.plugins()["good"] is plugins["good"]


def test_a_builder_that_refuses_a_module_fails_that_plugin_only(package: str) -> None:
    def picky(module: ModuleType) -> object:
        raise TypeError("no build_widget()")

    registry = Registry("widget", package, ("good",), picky)
    assert registry.plugins() == {}
    assert registry.failed() == {"good": "TypeError: no build_widget()"}
