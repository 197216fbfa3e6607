"""Classification metrics from true and predicted class ids (pure numpy).

Per class, the counts are one-vs-rest: for class ``c`` a sample is *positive* when its
true class is ``c``, and *predicted positive* when its predicted class is ``c``.

- ``TP`` true ``c``, predicted ``c``; ``FN`` true ``c``, predicted another class;
  ``FP`` true another class, predicted ``c``; ``TN`` neither true nor predicted ``c``.
- precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``,
  F1 ``2 * precision * recall / (precision + recall)`` (= ``2TP / (2TP + FP + FN)``),
  support ``TP + FN`` (number of samples whose true class is ``c``).
- accuracy (overall) ``correct / samples``; macro precision, recall and F1 are the
  unweighted means of the per-class values over *all* ``num_classes`` classes.

Any ratio whose denominator is 0 is 0.0 (no division warning, no NaN), as scikit-learn
does with ``zero_division=0``; a class that never occurs and is never predicted therefore
counts as 0 in the macro means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


@dataclass(frozen=True)
class BinaryMetrics:
    """Counts and ratios of one binary (or one-vs-rest) decision.

    Attributes:
        tp, fp, fn, tn: true positives, false positives, false negatives, true negatives.
        accuracy: ``(TP + TN) / (TP + FP + FN + TN)``.
        precision: ``TP / (TP + FP)``.
        recall: ``TP / (TP + FN)``.
        f1: ``2 * precision * recall / (precision + recall)``.

    Every ratio is 0.0 when its denominator is 0.
    """

    tp: int
    fp: int
    fn: int
    tn: int
    accuracy: float
    precision: float
    recall: float
    f1: float

    @property
    def support(self) -> int:
        """Number of actual positives, ``TP + FN``."""
        return self.tp + self.fn

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready dict with the ratios, the counts and ``support``."""
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def binary_metrics(tp: int, fp: int, fn: int, tn: int) -> BinaryMetrics:
    """Accuracy, precision, recall and F1 from the four counts of a binary decision.

    Definitions are in :class:`BinaryMetrics`; a ratio with a zero denominator is 0.0.

    Example:
        >>> m = binary_metrics(tp=40, fp=10, fn=20, tn=30)
        >>> round(m.accuracy, 3), round(m.precision, 3), round(m.recall, 3)
        (0.7, 0.8, 0.667)
    """
    counts = [int(v) for v in (tp, fp, fn, tn)]
    if any(v < 0 for v in counts):
        raise ValueError(f"counts must be >= 0, got tp={tp}, fp={fp}, fn={fn}, tn={tn}")
    tp, fp, fn, tn = counts
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return BinaryMetrics(
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        accuracy=_ratio(tp + tn, tp + fp + fn + tn),
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
    )


@dataclass(frozen=True)
class ClassificationMetrics:
    """Result of :func:`classification_metrics`.

    Attributes:
        names: class names, index = class id.
        confusion_matrix: ``(C, C)`` int64 counts, rows = true class, columns = predicted class.
        accuracy: fraction of samples whose predicted class is the true class.
        precision, recall, f1: macro averages (unweighted means over all classes).
        per_class: one-vs-rest :class:`BinaryMetrics` per class, index = class id.
    """

    names: tuple[str, ...]
    confusion_matrix: np.ndarray
    accuracy: float
    precision: float
    recall: float
    f1: float
    per_class: tuple[BinaryMetrics, ...]

    @property
    def num_samples(self) -> int:
        """Number of evaluated samples."""
        return int(self.confusion_matrix.sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``accuracy``, macro ``precision``/``recall``/``f1``, ``per_class``
        ``{name: {precision, recall, f1, support, tp, fp, fn, tn}}`` and ``confusion_matrix``
        (list of rows, rows = true class)."""
        per_class = {}
        for name, m in zip(self.names, self.per_class, strict=True):
            entry = m.to_dict()
            del entry["accuracy"]  # one-vs-rest accuracy is dominated by TN; not reported
            per_class[name] = entry
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "num_samples": self.num_samples,
            "per_class": per_class,
            "confusion_matrix": self.confusion_matrix.tolist(),
        }


def class_names(num_classes: int, names: Sequence[str] | None) -> tuple[str, ...]:
    """Validate ``names`` against ``num_classes``; default names are ``"0"``, ``"1"``, ..."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if names is None:
        return tuple(str(i) for i in range(num_classes))
    names = tuple(str(n) for n in names)
    if len(names) != num_classes:
        raise ValueError(f"got {len(names)} names for {num_classes} classes")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {list(names)}")
    return names


def _class_ids(values: Any, what: str, num_classes: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"{what} must hold integer class ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}[{i}] = {arr[i]} is not a class id in 0..{num_classes - 1}")
    return arr


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts; entry ``[t, p]`` counts samples of true class ``t`` predicted as ``p``."""
    t = _class_ids(y_true, "y_true", num_classes)
    p = _class_ids(y_pred, "y_pred", num_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    names: Sequence[str] | None = None,
) -> ClassificationMetrics:
    """Accuracy, per-class and macro precision / recall / F1, and the confusion matrix.

    Args:
        y_true: ``(N,)`` integer true class ids in ``0..num_classes-1``.
        y_pred: ``(N,)`` integer predicted class ids (e.g. ``scores.argmax(-1)``).
        num_classes: number of classes ``C``; classes absent from both arrays still get an
            entry (all counts 0, all ratios 0.0) and count in the macro means.
        names: class names, index = class id; default ``"0"``, ``"1"``, ...

    Returns:
        :class:`ClassificationMetrics`; definitions are in the module docstring. With no
        samples every ratio is 0.0.

    Raises:
        ValueError: arrays of different length, non-integer ids, ids out of range, or
            ``names`` of the wrong length.
    """
    names_t = class_names(num_classes, names)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    total = int(cm.sum())
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = total - tp - fp - fn
    per_class = tuple(binary_metrics(*counts) for counts in zip(tp, fp, fn, tn, strict=True))
    return ClassificationMetrics(
        names=names_t,
        confusion_matrix=cm,
        accuracy=_ratio(int(tp.sum()), total),
        precision=float(np.mean([m.precision for m in per_class])),
        recall=float(np.mean([m.recall for m in per_class])),
        f1=float(np.mean([m.f1 for m in per_class])),
        per_class=per_class,
    )
