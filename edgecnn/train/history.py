"""Training history: one record per epoch, saved as ``history.json`` and drawn as ``curves.png``.

A record holds ``epoch`` (1-based), ``lr`` (at the end of the epoch), ``seconds`` (wall time of
the epoch, validation included), the mean training losses (``loss`` and its parts, e.g.
``box``, ``obj``, ``cls``) and, on epochs with a validation, ``val`` (the report's headline
metrics: ``map50`` and ``map50_95``, or ``accuracy``) and ``fitness`` (the monitored value).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.json"
CURVES_FILE = "curves.png"


def save_history(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write the records as indented JSON (atomically: readers never see half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(list(records), indent=2) + "\n")
    tmp.replace(path)
    return path


def load_history(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``history.json``."""
    return json.loads(Path(path).read_text())


def plot_history(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Draw the training curves: losses per epoch (left) and validation metrics per epoch (right).

    Uses matplotlib's object API on an Agg canvas (no display, no global state).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss = fig.add_subplot(1, 2, 1)
    ax_val = fig.add_subplot(1, 2, 2)
    epochs = [r["epoch"] for r in records]
    loss_keys = [k for k in ("loss", "box", "obj", "cls") if any(k in r for r in records)]
    for key in loss_keys:
        ax_loss.plot(
            epochs, [r.get(key) for r in records], marker=".", label=key, linewidth=2 if key == "loss" else 1
        )
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    ax_loss.grid(True, alpha=0.3)
    ax_loss.legend()
    val = [r for r in records if r.get("val")]
    names = {"map50": "mAP50", "map50_95": "mAP50-95", "accuracy": "accuracy"}
    for key, label in names.items():
        points = [(r["epoch"], r["val"][key]) for r in val if r["val"].get(key) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax_val.plot(xs, ys, marker="o", markersize=3, label=label)
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("validation")
    ax_val.set_ylim(0, 1)
    ax_val.grid(True, alpha=0.3)
    if val:
        ax_val.legend()
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
