"""Minimum-cost assignment (the Hungarian method), in numpy.

The tracking metrics pair ground-truth objects with tracker hypotheses as CLEAR MOT asks:
the pairing of least total distance. This is the shortest-augmenting-path form of the
Hungarian method with row and column potentials (Kuhn 1955, Munkres 1957; as in
Jonker-Volgenant), O(n^2 m) for n rows and m >= n columns, each step a numpy operation
over the columns. ``scipy.optimize.linear_sum_assignment`` computes the same (the tests
compare the totals); scipy is not a dependency of edgecnn.
"""

from __future__ import annotations

import numpy as np


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one pairing of rows and columns of least total cost.

    Args:
        cost: ``(n, m)`` finite costs. Every row is paired when ``n <= m``, every column
            when ``n > m``.

    Returns:
        ``(rows, cols)`` int64 index arrays of the pairs, by ascending row.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be a 2-D array, got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("cost must be finite (use a large number for pairs that must not be made)")
    if cost.shape[0] > cost.shape[1]:
        cols, rows = min_cost_assignment(cost.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    n, m = cost.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    u = np.zeros(n + 1)  # row potentials (1-based; 0 unused)
    v = np.zeros(m + 1)  # column potentials; column 0 is the virtual start
    row_of = np.zeros(m + 1, dtype=np.int64)  # row_of[j]: the row paired with column j, 0: none
    way = np.zeros(m + 1, dtype=np.int64)  # the previous column on the augmenting path
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        min_reduced = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = row_of[j0]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (reduced < min_reduced[1:])
            min_reduced[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, min_reduced[1:], np.inf)
            j1 = int(candidates.argmin()) + 1
            delta = candidates[j1 - 1]
            u[row_of[used]] += delta
            v[used] -= delta
            min_reduced[~used] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    cols = np.flatnonzero(row_of[1:])
    rows = row_of[1:][cols] - 1
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
