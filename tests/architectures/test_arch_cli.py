"""``edgecnn models`` and docs/models.md, which must show the same table."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import edgecnn.cli.models_cmd  # noqa: F401  registers the command
from edgecnn.architectures import list_models, model_table
from edgecnn.cli.app import app
from edgecnn.cli.models_cmd import format_table

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _names(output: str) -> list[str]:
    return [line.split()[0] for line in output.strip().splitlines()[1:]]


def test_table_lists_public_models_with_figures() -> None:
    result = runner.invoke(app, ["models"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["name", "task", "params", "MACs", "input", "classes", "output"]
    assert _names(result.output) == [info.name for info in list_models()]
    row = next(line for line in lines if line.startswith("tiny_yolo_v3 "))
    assert row.split() == [
        "tiny_yolo_v3",
        "detect",
        "8.86",
        "M",
        "2782.5",
        "M",
        "416x416x3",
        "80",
        "yolo_v3",
        "s16/32",
        "x3",
    ]
    row = next(line for line in lines if line.startswith("mobilenet_v2_100 "))
    assert row.split()[:7] == ["mobilenet_v2_100", "classify", "3.54", "M", "300.8", "M", "224x224x3"]


def test_task_filter_and_test_variants() -> None:
    detect = runner.invoke(app, ["models", "--task", "detect"], catch_exceptions=False)
    assert _names(detect.output) == [info.name for info in list_models(task="detect")]
    everything = runner.invoke(app, ["models", "--include-test"], catch_exceptions=False)
    assert "tiny_yolo_v3_test" in _names(everything.output)
    assert "tiny_yolo_v3_test" not in _names(runner.invoke(app, ["models"]).output)


def test_bad_task_is_a_usage_error() -> None:
    result = runner.invoke(app, ["models", "--task", "segment"])
    assert result.exit_code == 2


def test_json_output() -> None:
    result = runner.invoke(app, ["models", "--json", "--task", "classify"], catch_exceptions=False)
    rows = json.loads(result.output)
    assert rows == [r.to_dict() for r in model_table(task="classify")]
    lenet = next(r for r in rows if r["name"] == "lenet")
    assert lenet["input_size"] == [28, 28] and lenet["channels"] == 1 and lenet["num_classes"] == 10
    assert lenet["params"] == 1_256_080 and lenet["macs"] == 6_522_000
    assert {r["task"] for r in rows} == {"classify"}


def test_docs_show_the_current_table() -> None:
    docs = (ROOT / "docs" / "models.md").read_text()
    assert format_table(model_table()) in docs, "regenerate the table in docs/models.md with `edgecnn models`"
