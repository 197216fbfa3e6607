"""Classification post-processing: class probabilities and the top-k classes."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["class_probabilities", "topk"]

Activation = Literal["softmax", "sigmoid", "none"]


def class_probabilities(scores: np.ndarray, activation: Activation) -> np.ndarray:
    """Apply the output's activation to one ``(C,)`` (or ``(1, C)``) score vector.

    Args:
        scores: logits, or probabilities for ``activation="none"``.
        activation: ``softmax`` (one label), ``sigmoid`` (independent labels) or ``none``
            (already probabilities); the model spec's ``output.class_activation``.

    Returns:
        ``(C,)`` float32 probabilities.
    """
    x = np.asarray(scores, dtype=np.float32).reshape(-1)
    if activation == "softmax":
        e = np.exp(x - x.max()) if x.size else x.copy()
        return e / e.sum() if x.size else e
    if activation == "sigmoid":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-x))
    if activation == "none":
        return x.copy()
    raise ValueError(f"unknown activation {activation!r}")


def topk(scores: np.ndarray, k: int = 5, activation: Activation = "softmax") -> list[tuple[int, float]]:
    """The ``k`` most probable classes, best first; equal probabilities: lower class id first.

    Args:
        scores: ``(C,)`` or ``(1, C)`` model output.
        k: how many classes to return (fewer if there are fewer classes). Default 5.
        activation: see :func:`class_probabilities`. Default "softmax".

    Returns:
        ``[(class_id, probability), ...]`` as Python ints and floats.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    probs = class_probabilities(scores, activation)
    best = (-probs).argsort(kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in best]
