"""Object masks and zones: where in the frame a detection stands.

A fixed camera sees places where detections are never wanted: the street behind a garden
fence, a parked car, a poster of a person. Like Frigate's object masks, each mask is a
polygon in fractions of the frame (``[[0, 0], [1, 0], [1, 0.3], [0, 0.3]]`` is the top 30 %),
so it holds at any resolution, and a detection is dropped when its foot point, the middle
of its bottom edge (where a person or a car stands), is inside one. Zones are named polygons
of the same kind: a detection is *in* a zone when its foot point is (Frigate's zones: a
person in the driveway, a car in the parking space). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which ``(N, 2)`` points are inside the ``(M, 2)`` polygon (even-odd rule, any winding).

    A point exactly on an edge may count as either side; masks are drawn by hand, so the
    edge is not a place anyone relies on.
    """
    x, y = points[:, 0:1], points[:, 1:2]  # (N, 1) against the edges (1, M)
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)  # the edge spans the point's height
    with np.errstate(divide="ignore", invalid="ignore"):
        at_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = np.count_nonzero(crosses & (x < at_x), axis=1) % 2 == 1
    return inside


#: Foot points are kept this far inside the frame: a box standing on the frame's bottom edge
#: (y = 1) is inside a mask drawn to that edge, not on its boundary.
_INSET = 1e-9


def foot_points(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """The middle of each ``x1 y1 x2 y2`` box's bottom edge, in fractions of the frame
    (clipped to just inside it)."""
    feet = np.stack([(boxes[:, 0] + boxes[:, 2]) / (2.0 * width), boxes[:, 3] / float(height)], axis=1)
    return np.clip(feet, _INSET, 1.0 - _INSET)


def unmasked(
    boxes: np.ndarray, width: int, height: int, masks: Sequence[np.ndarray], feet: np.ndarray | None = None
) -> np.ndarray:
    """A boolean keep-mask over ``boxes`` (frame pixels): False where the foot point is in a
    mask. ``feet``: the boxes' :func:`foot_points`, when the caller has them already."""
    keep = np.ones(len(boxes), dtype=bool)
    if not masks or len(boxes) == 0:
        return keep
    if feet is None:
        feet = foot_points(np.asarray(boxes, dtype=np.float64), width, height)
    for polygon in masks:
        keep &= ~points_in_polygon(feet, polygon)
    return keep


def zones_of(
    boxes: np.ndarray,
    width: int,
    height: int,
    zones: Sequence[tuple[str, np.ndarray]],
    feet: np.ndarray | None = None,
) -> list[tuple[str, ...]]:
    """For each box (frame pixels), the names of the zones its foot point is in, in the
    order the zones are given. ``feet``: as for :func:`unmasked`."""
    if not zones or len(boxes) == 0:
        return [()] * len(boxes)
    if feet is None:
        feet = foot_points(np.asarray(boxes, dtype=np.float64), width, height)
    inside = np.stack([points_in_polygon(feet, polygon) for _, polygon in zones], axis=1)
    names = [name for name, _ in zones]
    return [tuple(name for name, hit in zip(names, row, strict=True) if hit) for row in inside]
