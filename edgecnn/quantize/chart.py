"""The report's picture, ``per_class.png``: each class's score, float beside int8.

One row per class of the metric the gate watches, per class (AP50 for detectors, recall,
which is the class's accuracy, for classifiers), in points, with the drop (float minus int8,
as in ``report.md``) written at the end of the row. Rows are sorted by drop, largest first,
under a first row for all classes together, so the classes quantisation hurts are at the
top; a drop above ``--max-drop`` is drawn in red. Drawn with matplotlib's object API on an
Agg canvas, as the evaluation plots.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

from edgecnn.evaluation.plots import new_figure
from edgecnn.quantize.report import METRIC_NAMES

CHART_FILE = "per_class.png"
MAX_ROWS = 40  # more classes than this: the worst ones are drawn, report.md lists them all
_CLASS_METRIC = {"detect": ("ap50", "AP50"), "classify": ("recall", "accuracy")}
FLOAT_COLOUR, INT8_COLOUR, OVER_GATE_COLOUR = "#9aa5b1", "#2f6fdf", "#d62728"


class Row(NamedTuple):
    """One bar pair: a class (or all classes) with its score in points, float and int8."""

    label: str
    float_points: float | None
    int8_points: float | None
    drop: float | None


def chart_rows(report: dict[str, Any]) -> tuple[list[Row], int]:
    """The rows drawn: all classes first, then classes by drop, largest first (unmeasured
    last); and how many classes were left out past :data:`MAX_ROWS`."""
    metrics = report["metrics"]
    key, _ = _CLASS_METRIC[report["task"]]
    primary = report["primary_metric"]
    whole = metrics["overall"][primary]
    first = Row(
        f"all classes ({METRIC_NAMES.get(primary, primary)})",
        whole["float"],
        whole["quantized"],
        whole["drop"],
    )
    classes = [
        Row(name, entry[key]["float"], entry[key]["quantized"], entry[key]["drop"])
        for name, entry in metrics["per_class"].items()
    ]
    classes.sort(key=lambda r: math.inf if r.drop is None else -r.drop)  # stable: ties keep class order
    return [first, *classes[:MAX_ROWS]], max(0, len(classes) - MAX_ROWS)


def plot_per_class(report: dict[str, Any], path: str | Path) -> Path:
    """Draw :func:`chart_rows` of a quantisation report into ``path`` (PNG); returns ``path``."""
    rows, left_out = chart_rows(report)
    gate = report.get("gate") or {}
    max_drop = gate.get("max_drop")
    _, metric_label = _CLASS_METRIC[report["task"]]
    fig = new_figure(8.0, 1.6 + 0.32 * len(rows))
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(rows)))
    height = 0.38
    floats = [r.float_points or 0.0 for r in rows]
    int8s = [r.int8_points or 0.0 for r in rows]
    ax.barh([y - height / 2 for y in ys], floats, height, color=FLOAT_COLOUR, label="float")
    ax.barh([y + height / 2 for y in ys], int8s, height, color=INT8_COLOUR, label="int8")
    for y, row in zip(ys, rows, strict=True):
        over = row.drop is not None and max_drop is not None and row.drop > max_drop
        text = "n/a" if row.drop is None else f"{round(row.drop, 1) + 0.0:.1f}"  # no "-0.0"
        ax.text(101, y, text, va="center", fontsize=8, color=OVER_GATE_COLOUR if over else "black")
    ax.text(101, -0.95, "drop", va="center", fontsize=8, fontweight="bold")
    ax.set_yticks(ys, labels=[r.label for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -1.3)  # top to bottom: the column header, all classes, largest drop
    ax.set_xlim(0, 110)
    ax.set_xlabel(f"{metric_label} (points); at the right: the drop, float minus int8")
    ax.grid(True, axis="x", alpha=0.3)
    title = f"{report.get('model', 'model')}: {metric_label} per class, {report.get('split', '?')} split"
    if max_drop is not None:
        verdict = "passed" if gate.get("passed") else "FAILED"
        title += f"\ngate: drop <= {max_drop:g} points, {verdict}"
    if left_out:
        title += f"\n{left_out} more classes with smaller drops in report.md"
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
