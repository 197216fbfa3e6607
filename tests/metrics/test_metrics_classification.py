"""Classification metrics: the textbook example, scikit-learn as oracle, zero division, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from edgecnn.metrics.classification import (
    BinaryMetrics,
    binary_metrics,
    classification_metrics,
    confusion_matrix,
)


def test_textbook_example() -> None:
    m = binary_metrics(tp=40, fp=10, fn=20, tn=30)
    assert m.accuracy == pytest.approx(0.70)
    assert m.precision == pytest.approx(0.80)
    assert m.recall == pytest.approx(40 / 60)
    assert round(m.recall, 3) == 0.667
    assert m.f1 == pytest.approx(2 * 0.8 * (2 / 3) / (0.8 + 2 / 3))
    assert m.support == 60


def test_textbook_example_through_the_multiclass_path() -> None:
    # Class 1 ("pos") is the positive class: 40 TP, 20 FN, 10 FP, 30 TN.
    y_true = np.array([1] * 40 + [1] * 20 + [0] * 10 + [0] * 30)
    y_pred = np.array([1] * 40 + [0] * 20 + [1] * 10 + [0] * 30)
    m = classification_metrics(y_true, y_pred, num_classes=2, names=["neg", "pos"])
    assert m.accuracy == pytest.approx(0.70)
    assert m.confusion_matrix.tolist() == [[30, 10], [20, 40]]
    pos = m.to_dict()["per_class"]["pos"]
    assert (pos["tp"], pos["fp"], pos["fn"], pos["tn"]) == (40, 10, 20, 30)
    assert pos["precision"] == pytest.approx(0.80)
    assert pos["recall"] == pytest.approx(0.667, abs=5e-4)
    assert pos["support"] == 60
    # The negative class sees the same matrix from the other side.
    neg = m.per_class[0]
    assert (neg.tp, neg.fp, neg.fn, neg.tn) == (30, 20, 10, 40)
    assert m.precision == pytest.approx((0.8 + 30 / 50) / 2)


@pytest.mark.parametrize("seed", range(8))
def test_equals_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_classes = 6
    n = int(rng.integers(1, 300))
    y_true = rng.integers(0, num_classes - 1, n)  # the last class never occurs ...
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, num_classes, n))
    y_pred[y_pred == 2] = 3  # ... and class 2 is never predicted
    m = classification_metrics(y_true, y_pred, num_classes)
    labels = list(range(num_classes))
    np.testing.assert_array_equal(m.confusion_matrix, skm.confusion_matrix(y_true, y_pred, labels=labels))
    assert m.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose([c.precision for c in m.per_class], p)
    np.testing.assert_allclose([c.recall for c in m.per_class], r)
    np.testing.assert_allclose([c.f1 for c in m.per_class], f)
    np.testing.assert_array_equal([c.support for c in m.per_class], s)
    macro = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    assert (m.precision, m.recall, m.f1) == pytest.approx(macro[:3])
    for c in m.per_class:
        assert c.tp + c.fp + c.fn + c.tn == n


def test_division_by_zero_gives_zero() -> None:
    assert binary_metrics(0, 0, 0, 0) == BinaryMetrics(0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
    assert binary_metrics(0, 0, 5, 5).precision == 0.0  # never predicted positive
    assert binary_metrics(0, 5, 0, 5).recall == 0.0  # no actual positives
    assert binary_metrics(0, 5, 5, 0).f1 == 0.0  # precision + recall == 0
    # Class 2 never occurs and is never predicted: all zero, and it pulls the macro mean down.
    m = classification_metrics([0, 1, 1], [0, 1, 1], num_classes=3)
    assert m.accuracy == 1.0
    assert m.per_class[2].to_dict() == {
        "accuracy": 1.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "tp": 0,
        "fp": 0,
        "fn": 0,
        "tn": 3,
    }
    assert m.precision == pytest.approx(2 / 3)
    empty = classification_metrics([], [], num_classes=2)
    assert (empty.accuracy, empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0, 0.0)
    assert empty.num_samples == 0


def test_to_dict_is_json_ready() -> None:
    m = classification_metrics(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), 3, names=["a", "b", "c"])
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert set(d) == {"accuracy", "precision", "recall", "f1", "num_samples", "per_class", "confusion_matrix"}
    assert list(d["per_class"]) == ["a", "b", "c"]
    assert set(d["per_class"]["c"]) == {"precision", "recall", "f1", "support", "tp", "fp", "fn", "tn"}
    assert d["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert d["accuracy"] == 0.5
    assert m.names == ("a", "b", "c")
    assert classification_metrics([0], [0], 2).names == ("0", "1")


def test_confusion_matrix_rows_are_true_classes() -> None:
    cm = confusion_matrix([0, 0, 0, 1], [1, 1, 0, 1], num_classes=2)
    assert cm.tolist() == [[1, 2], [0, 1]]
    assert cm.dtype == np.int64


@pytest.mark.parametrize(
    ("y_true", "y_pred", "kwargs", "message"),
    [
        ([0, 1], [0], {}, "differ in length"),
        ([0, 3], [0, 1], {}, r"y_true\[1\] = 3 is not a class id in 0\.\.2"),
        ([0, 1], [0, -1], {}, r"y_pred\[1\] = -1"),
        ([0.0, 1.0], [0, 1], {}, "integer class ids"),
        ([[0, 1]], [[0, 1]], {}, "1-D"),
        ([0], [0], {"names": ["a", "b"]}, "2 names for 3 classes"),
        ([0], [0], {"names": ["a", "a", "b"]}, "unique"),
    ],
)
def test_bad_inputs_are_rejected(y_true, y_pred, kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_pred, num_classes=3, **kwargs)


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        classification_metrics([0], [0], num_classes=0)
    with pytest.raises(ValueError, match="counts must be >= 0"):
        binary_metrics(-1, 0, 0, 0)
