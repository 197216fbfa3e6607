"""Classification post-processing: activations and top-k."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import docstring_defaults, signature_defaults

from edgecnn.postprocess import class_probabilities, topk


def test_softmax_topk_is_sorted_and_normalised() -> None:
    logits = np.array([1.0, 3.0, 2.0, -1.0])
    probs = np.exp(logits) / np.exp(logits).sum()
    result = topk(logits, 3, "softmax")
    assert [c for c, _ in result] == [1, 2, 0]
    np.testing.assert_allclose([p for _, p in result], probs[[1, 2, 0]], rtol=1e-6)
    assert sum(p for _, p in topk(logits, 10, "softmax")) == pytest.approx(1.0)
    assert all(type(c) is int and type(p) is float for c, p in result)


def test_softmax_is_stable_for_large_logits() -> None:
    result = topk(np.array([1000.0, 999.0, -1000.0], np.float32), 2, "softmax")
    assert [c for c, _ in result] == [0, 1]
    assert result[0][1] == pytest.approx(1 / (1 + np.exp(-1.0)), rel=1e-6)


def test_sigmoid_and_none() -> None:
    result = topk(np.array([[0.0, 2.0, -2.0]]), 2, "sigmoid")  # (1, C) model output
    assert result == [(1, pytest.approx(1 / (1 + np.exp(-2.0)))), (0, pytest.approx(0.5))]
    assert topk(np.array([0.1, 0.7, 0.2]), 1, "none") == [(1, pytest.approx(0.7))]
    with np.errstate(over="raise"):
        assert class_probabilities(np.array([-1000.0, 1000.0]), "sigmoid").tolist() == [0.0, 1.0]


def test_ties_keep_the_lower_class_id_and_k_is_capped() -> None:
    assert [c for c, _ in topk(np.array([0.2, 0.5, 0.5, 0.1, 0.5]), 4, "none")] == [1, 2, 4, 0]
    assert len(topk(np.zeros(3), 10, "softmax")) == 3


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k must be"):
        topk(np.zeros(3), 0, "softmax")
    with pytest.raises(ValueError, match="activation"):
        topk(np.zeros(3), 1, "relu")  # type: ignore[arg-type]


def test_documented_defaults_match_the_signature() -> None:
    assert docstring_defaults(topk) == signature_defaults(topk) == {"k": 5, "activation": "softmax"}
