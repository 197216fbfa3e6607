"""docs/sinks.md cannot drift from the code: config tables, metric names, endpoints."""

from __future__ import annotations

import re
from pathlib import Path

import annotated_types as at
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from edgecnn.daemon.state import DaemonStats
from edgecnn.sinks.annotated import AnnotatedConfig
from edgecnn.sinks.http import HttpConfig, prometheus_text
from edgecnn.sinks.mqtt import MqttConfig
from edgecnn.sinks.snapshots import SnapshotsConfig

DOC = (Path(__file__).parents[2] / "docs" / "sinks.md").read_text()


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def bounds_text(field: FieldInfo) -> str:
    parts = []
    for m in field.metadata:
        if isinstance(m, at.Ge):
            parts.append(f">= {m.ge}")
        elif isinstance(m, at.Gt):
            parts.append(f"> {m.gt}")
        elif isinstance(m, at.Le):
            parts.append(f"<= {m.le}")
        elif isinstance(m, at.MinLen):
            parts.append(f"length >= {m.min_length}")
        elif isinstance(m, at.MaxLen):
            parts.append(f"length <= {m.max_length}")
        elif getattr(m, "pattern", None):
            parts.append("no `#`, `+`, trailing `/`")
    return ", ".join(parts) or "–"


def doc_table(heading: str) -> dict[str, tuple[str, str]]:
    """``key -> (default, bounds)`` from the first table after ``heading``."""
    section = DOC[DOC.index(heading):]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        match = re.match(r"^\| `(\w+)` \| (.*?) \| (.*?) \| .* \|$", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
        elif rows and not line.startswith("|"):
            break
    return rows


@pytest.mark.parametrize(("heading", "config"), [
    ("## MQTT (`type: mqtt`)", MqttConfig), ("## HTTP (`type: http`)", HttpConfig),
    ("## Snapshots (`type: snapshots`)", SnapshotsConfig),
    ("## Annotated frames (`type: annotated`)", AnnotatedConfig),
])
def test_docs_config_tables_match_the_models(heading: str, config: type[BaseModel]) -> None:
    rows = doc_table(heading)
    fields = {name: f for name, f in config.model_fields.items() if name != "type"}
    assert set(rows) == set(fields)
    for name, field in fields.items():
        assert rows[name] == (default_text(field), bounds_text(field)), name
        assert field.description, f"{config.__name__}.{name} has no description"


def test_docs_list_every_metric_and_endpoint() -> None:
    text = prometheus_text(DaemonStats("cam").snapshot())
    names = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    documented = set(re.findall(r"^\| `(edgecnn_\w+)", DOC, re.M))
    assert names == documented
    source = (Path(__file__).parents[2] / "edgecnn" / "sinks" / "http.py").read_text()
    routes = set(re.findall(r'"(/[\w.]*)": self\._', source)) - {"/index.html"}
    assert routes and all(f"| `{route}` |" in DOC for route in routes)
