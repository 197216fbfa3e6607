"""Object masks: point-in-polygon against OpenCV's pointPolygonTest, foot points, the keep-mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecnn.postprocess.masks import foot_points, points_in_polygon, unmasked, zones_of


def _star(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random simple polygon (a star-shaped one: concave), clockwise or not."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.1, 0.5, n)
    polygon = np.stack([0.5 + radii * np.cos(angles), 0.5 + radii * np.sin(angles)], axis=1)
    return polygon[::-1] if rng.random() < 0.5 else polygon


@pytest.mark.parametrize("seed", range(20))
def test_points_in_polygon_agrees_with_opencv(seed: int) -> None:
    rng = np.random.default_rng(seed)
    polygon = _star(rng, int(rng.integers(3, 12)))
    points = rng.uniform(0, 1, (500, 2))
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    distance = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in points])
    clear = np.abs(distance) > 1e-6  # not on an edge, where either answer is fine
    assert clear.sum() > 450
    assert np.array_equal(points_in_polygon(points, polygon)[clear], (distance > 0)[clear])


def test_a_detection_is_masked_by_its_foot_point() -> None:
    boxes = np.array([[100, 10, 140, 200], [100, 10, 140, 300], [300, 250, 340, 290]], dtype=np.float32)
    feet = foot_points(boxes, 400, 300)
    np.testing.assert_allclose(feet, [[0.3, 2 / 3], [0.3, 1.0], [0.8, 290 / 300]], atol=1e-8)
    street = np.array([[0.0, 0.8], [1.0, 0.8], [1.0, 1.0], [0.0, 1.0]])  # the bottom 20 %
    # The first box reaches into the street only with its head; the others stand in it (the
    # second on the frame's bottom edge, which a mask drawn to that edge covers).
    assert unmasked(boxes, 400, 300, [street]).tolist() == [True, False, False]
    corner = np.array([[0.7, 0.9], [1.0, 0.9], [1.0, 1.0], [0.7, 1.0]])
    assert unmasked(boxes, 400, 300, []).tolist() == [True, True, True]
    assert unmasked(boxes[:0], 400, 300, [street]).tolist() == []
    assert unmasked(boxes, 400, 300, [corner]).tolist() == [True, True, False]


def test_zones_list_the_zones_each_foot_point_is_in() -> None:
    boxes = np.array([[10, 10, 50, 100], [300, 200, 380, 290], [220, 0, 300, 150]], dtype=np.float32)
    left = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]])
    bottom = np.array([[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]])
    # feet: (0.075, 0.33) left only; (0.85, 0.97) bottom only; (0.65, 0.5) in neither
    assert zones_of(boxes, 400, 300, [("left", left), ("bottom", bottom)]) == [("left",), ("bottom",), ()]
    assert zones_of(boxes, 400, 300, [("bottom", bottom), ("all", left), ("all2", bottom)])[1] == (
        "bottom",
        "all2",
    )
    assert zones_of(boxes, 400, 300, []) == [(), (), ()]
