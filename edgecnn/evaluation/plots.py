"""Evaluation plots as PNG files: precision-recall curves and a confusion matrix (detection), a
confusion matrix (classification).

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch),
so it works without a display and does not change the caller's matplotlib state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgecnn.metrics.classification import ClassificationMetrics
from edgecnn.metrics.detection import DetectionMetrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PR_CURVE_FILE = "pr_curve.png"
CONFUSION_FILE = "confusion_matrix.png"


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure of ``width`` x ``height`` inches at 100 dpi on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_pr_curve(metrics: DetectionMetrics, path: str | Path, iou: float = 0.5) -> Path:
    """Per-class precision-recall curves at ``iou`` and their mean (the mAP curve); returns ``path``."""
    fig = new_figure(7, 5)
    ax = fig.add_subplot(1, 1, 1)
    recall = metrics.recall_thresholds
    curves = []
    for k, name in enumerate(metrics.names):
        if not metrics.has_gt[k]:
            continue
        _, precision = metrics.pr_curve(k, iou)
        curves.append(precision)
        ap = float(np.mean(precision))
        ax.plot(recall, precision, linewidth=1, label=f"{name} {ap:.3f}")
    if curves:
        mean = np.mean(curves, axis=0)
        ax.plot(
            recall,
            mean,
            linewidth=3,
            color="black",
            label=f"all classes {float(np.mean(mean)):.3f} mAP@{iou:g}",
        )
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Precision-recall at IoU {iou:g}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_confusion_matrix(metrics: ClassificationMetrics, path: str | Path, normalize: bool = True) -> Path:
    """The confusion matrix (rows: true class, columns: predicted), row-normalised by default."""
    title = f"Confusion matrix (accuracy {metrics.accuracy:.3f})"
    return _draw_matrix(metrics.confusion_matrix, list(metrics.names), title, path, normalize)


def plot_detection_confusion(metrics: DetectionMetrics, path: str | Path, normalize: bool = True) -> Path:
    """The detection confusion matrix at the best-F1 operating point (rows: true class, then
    background: false detections; columns: predicted class, then background: missed objects),
    each row normalised by default."""
    if metrics.confusion is None:
        raise ValueError("these metrics have no confusion matrix")
    threshold = metrics.score_threshold
    at = "no operating point" if threshold is None else f"score >= {threshold:.3g}"
    title = f"Detection confusion matrix\n{at}, IoU 0.5"
    return _draw_matrix(metrics.confusion, [*metrics.names, "background"], title, path, normalize)


def _draw_matrix(cm: np.ndarray, names: list[str], title: str, path: str | Path, normalize: bool) -> Path:
    cm = cm.astype(float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    n = len(names)
    side = min(max(5.0, 0.5 * n + 2.5), 20)
    fig = new_figure(side + 1.5, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(cm.max(), 1))
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(n), labels=names, rotation=90 if n > 6 else 0)
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    if n <= 30:
        for t in range(n):
            for p in range(n):
                if cm[t, p]:
                    text = f"{shown[t, p]:.2f}" if normalize else str(int(cm[t, p]))
                    ax.text(
                        p,
                        t,
                        text,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if shown[t, p] > 0.5 * (1 if normalize else cm.max()) else "black",
                    )
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def write_plots(metrics: DetectionMetrics | ClassificationMetrics, out_dir: str | Path) -> list[Path]:
    """Write the plots of ``metrics`` into ``out_dir`` (created): for a detector the PR curves and
    the detection confusion matrix, for a classifier the confusion matrix.

    Returns:
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(metrics, DetectionMetrics):
        written = [plot_pr_curve(metrics, out / PR_CURVE_FILE)]
        if metrics.confusion is not None:
            written.append(plot_detection_confusion(metrics, out / CONFUSION_FILE))
        return written
    return [plot_confusion_matrix(metrics, out / CONFUSION_FILE)]
