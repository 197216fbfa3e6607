"""Defaults stated in three places (TrainConfig, the CLI, docs/training.md) must agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main
from pydantic import ValidationError

import edgecnn.cli.train_cmd  # noqa: F401  registers `train`
from edgecnn.cli.app import app
from edgecnn.train.callbacks import EarlyStopping
from edgecnn.train.config import (
    DEFAULT_CLASSIFIER,
    DEFAULT_DETECT_LR,
    DEFAULT_DETECTOR,
    DEFAULT_LR,
    TrainConfig,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def _cli_defaults() -> dict[str, object]:
    command = typer.main.get_command(app).commands["train"]
    return {p.name: p.default for p in command.params}


def test_cli_defaults_equal_the_config_defaults() -> None:
    cli = _cli_defaults()
    fields = TrainConfig.model_fields
    shared = [
        name for name in cli if name in fields and name not in ("data", "weights", "optimizer", "anchors")
    ]
    assert len(shared) >= 15
    for name in shared:
        default = fields[name].get_default(call_default_factory=True)
        assert cli[name] == default, name
    assert cli["optimizer"] == fields["optimizer"].default
    assert cli["anchors"] == fields["anchors"].default
    assert cli["weights"] == "none" and fields["weights"].default is None


def test_docs_state_the_actual_defaults() -> None:
    docs = DOCS.read_text()
    table = {m[1]: m[2] for m in re.finditer(r"^\| `(--[a-z-]+)[^`]*` \| ([^|]+) \|", docs, re.M)}
    config = TrainConfig(data="d.yaml")
    assert table["--epochs"].strip() == str(config.epochs)
    assert table["--batch"].strip() == str(config.batch)
    assert table["--patience"].strip() == str(config.patience)
    assert table["--val-every"].strip() == str(config.val_every)
    assert table["--out"].strip() == f"`{config.out}`"
    assert table["--lr"].strip() == (
        f"AdamW {DEFAULT_DETECT_LR['adamw']:g} (detect), {DEFAULT_LR['adamw']:g} (classify); "
        f"SGD {DEFAULT_LR['sgd']:g}"
    )
    assert DEFAULT_DETECT_LR["sgd"] == DEFAULT_LR["sgd"]
    name, width, size = DEFAULT_DETECTOR
    assert f"**`{name}` at width {width:g}, {size} px**" in docs
    name, width, size = DEFAULT_CLASSIFIER
    assert f"**`{name}` at {size} px**" in docs


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="data is required"):
        TrainConfig()
    assert TrainConfig(out="runs/x", resume=True).data is None
    with pytest.raises(ValidationError):
        TrainConfig(data="d.yaml", batch=0)
    with pytest.raises(ValidationError):
        TrainConfig(data="d.yaml", nosuch=1)
    assert TrainConfig(data="d.yaml", optimizer="sgd").peak_lr() == DEFAULT_LR["sgd"]
    assert TrainConfig(data="d.yaml").peak_lr("detect") == DEFAULT_DETECT_LR["adamw"]
    assert TrainConfig(data="d.yaml").peak_lr("classify") == DEFAULT_LR["adamw"]
    assert TrainConfig(data="d.yaml", lr=0.5).peak_lr("detect") == 0.5


def test_early_stopping_patience() -> None:
    stop = EarlyStopping(patience=3)
    assert stop.update(1, 0.2) and stop.update(2, 0.3)
    assert not stop.update(3, 0.3)  # equal is not better
    assert not stop.should_stop(4)
    assert stop.should_stop(5) and stop.best_epoch == 2
    never = EarlyStopping(patience=0)
    never.update(1, 1.0)
    assert not never.should_stop(1000)
    restored = EarlyStopping(3)
    restored.load_state(stop.state())
    assert restored.best == 0.3 and restored.best_epoch == 2
