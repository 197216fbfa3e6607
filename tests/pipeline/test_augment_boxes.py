"""Boxes follow the pixels through every geometric augmentation.

Oracle: rectangles filled in one colour channel (see conftest); after augmentation the
pixels of each rectangle (at least half covered) must be enclosed tightly by its box.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgecnn.data.augment import AugmentConfig, augment_detection, filter_boxes, transform_boxes

OFF = AugmentConfig.off().model_dump()
# No box thresholds: every visible rectangle must keep a box (tested separately below).
KEEP_ALL = {**OFF, "min_area_ratio": 0.0, "min_box_size": 0.0}
SEEDS = range(24)


def _scene(rect_scene, rng: np.random.Generator, width: int = 64, height: int = 48, n: int = 3):
    rects = []
    for _ in range(n):
        bw, bh = int(rng.integers(6, width // 2)), int(rng.integers(6, height // 2))
        x, y = int(rng.integers(0, width - bw)), int(rng.integers(0, height - bh))
        rects.append((x, y, x + bw, y + bh))
    return rect_scene(width, height, rects, list(range(n)))


def _assert_tight(image, boxes, classes, channel_box_near, tol: float) -> None:
    """Each box (2 px or more) encloses its rectangle's pixels within ``tol``; every visible
    rectangle pixel lies in a box of its class."""
    for box, cls in zip(boxes, classes, strict=True):
        if min(box[2] - box[0], box[3] - box[1]) < 2:
            continue
        found = channel_box_near(image, int(cls), box)
        assert found is not None, f"box {box} of class {cls} has no pixels"
        np.testing.assert_allclose(found, box, atol=tol, err_msg=f"class {cls}")
    for c in range(3):
        ys, xs = np.nonzero(image[:, :, c] >= 128)
        own = boxes[classes == c]
        inside = np.zeros(len(xs), bool)
        for x1, y1, x2, y2 in own:
            inside |= (
                (xs + 0.5 >= x1 - 1) & (xs + 0.5 <= x2 + 1) & (ys + 0.5 >= y1 - 1) & (ys + 0.5 <= y2 + 1)
            )
        assert inside.all(), f"{(~inside).sum()} pixels of class {c} are in no box"


@pytest.mark.parametrize("flips", [{"fliplr": 1.0}, {"flipud": 1.0}, {"fliplr": 1.0, "flipud": 1.0}])
def test_flips_move_boxes_exactly_with_the_pixels(rect_scene, channel_box_near, flips) -> None:
    image, boxes, classes = _scene(rect_scene, np.random.default_rng(0))
    out, out_boxes, out_classes = augment_detection(
        image, boxes, classes, AugmentConfig(**{**OFF, **flips}), np.random.default_rng(0)
    )
    expected = image
    if "fliplr" in flips:
        expected = expected[:, ::-1]
    if "flipud" in flips:
        expected = expected[::-1]
    np.testing.assert_array_equal(out, expected)
    assert out_classes.tolist() == classes.tolist()
    _assert_tight(out, out_boxes, out_classes, channel_box_near, tol=0)


@pytest.mark.parametrize(
    "params",
    [
        {"translate": 0.3},
        {"scale": 0.5},
        {"translate": 0.2, "scale": 0.5, "fliplr": 0.5},
    ],
    ids=["translate", "scale", "translate+scale+flip"],
)
def test_translate_and_scale_keep_boxes_tight(rect_scene, channel_box_near, params) -> None:
    config = AugmentConfig(**{**KEEP_ALL, **params})
    moved = 0
    for seed in SEEDS:
        image, boxes, classes = _scene(rect_scene, np.random.default_rng(100 + seed))
        out, out_boxes, out_classes = augment_detection(
            image, boxes, classes, config, np.random.default_rng(seed)
        )
        assert out.shape == image.shape
        moved += not np.array_equal(out_boxes, boxes)
        _assert_tight(out, out_boxes, out_classes, channel_box_near, tol=1.0)
    assert moved == len(SEEDS)


def test_out_size_places_the_image_like_letterbox_and_scales_boxes(rect_scene, channel_box_near) -> None:
    image, boxes, classes = _scene(rect_scene, np.random.default_rng(1), width=40, height=30)
    config = AugmentConfig(**{**KEEP_ALL, "scale": 0.4, "translate": 0.1})
    for seed in SEEDS:
        out, out_boxes, out_classes = augment_detection(
            image, boxes, classes, config, np.random.default_rng(seed), out_size=(64, 48), pad_value=0
        )
        assert out.shape == (48, 64, 3)
        _assert_tight(out, out_boxes, out_classes, channel_box_near, tol=1.0)


def test_mosaic_keeps_boxes_tight(rect_scene, channel_box_near) -> None:
    config = AugmentConfig(**{**KEEP_ALL, "mosaic": 1.0, "translate": 0.1, "scale": 0.3})
    sizes = [(64, 48), (40, 48), (64, 30)]
    sources_seen = set()
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        # One rectangle per image, a different channel in each of three; the fourth is empty.
        scenes = []
        for k, (w, h) in enumerate(sizes):
            bw, bh = int(rng.integers(8, w // 2)), int(rng.integers(8, h // 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            scenes.append(rect_scene(w, h, [(x, y, x + bw, y + bh)], [k]))
        scenes.append(rect_scene(50, 40, [], []))
        others = iter(scenes[1:])
        out, out_boxes, out_classes = augment_detection(
            *scenes[0], config, rng, out_size=(64, 48), mosaic_source=lambda o=others: next(o), pad_value=0
        )
        assert out.shape == (48, 64, 3)
        sources_seen.update(out_classes.tolist())
        _assert_tight(out, out_boxes, out_classes, channel_box_near, tol=1.0)
    assert sources_seen == {0, 1, 2}  # rectangles from the mosaic's other images made it in


def test_rotation_box_encloses_the_rotated_pixels(rect_scene, channel_box_near) -> None:
    config = AugmentConfig(**{**KEEP_ALL, "degrees": 30.0})
    for seed in SEEDS:
        image, boxes, classes = _scene(rect_scene, np.random.default_rng(200 + seed), n=1)
        rng = np.random.default_rng(seed)
        angle = math.radians(abs(np.random.default_rng(seed).uniform(-30, 30)))
        out, out_boxes, out_classes = augment_detection(image, boxes, classes, config, rng)
        _assert_tight_containment(out, out_boxes, out_classes, channel_box_near)
        if len(out_boxes) and out_boxes[0, 0] > 0 and out_boxes[0, 2] < 64:  # not clipped horizontally
            w, h = boxes[0, 2] - boxes[0, 0], boxes[0, 3] - boxes[0, 1]
            enclosing = w * math.cos(angle) + h * math.sin(angle)
            assert out_boxes[0, 2] - out_boxes[0, 0] == pytest.approx(enclosing, abs=1e-3)


def _assert_tight_containment(image, boxes, classes, channel_box_near) -> None:
    for box, cls in zip(boxes, classes, strict=True):
        found = channel_box_near(image, int(cls), box)
        if found is None:
            continue
        assert found[0] >= box[0] - 1 and found[1] >= box[1] - 1
        assert found[2] <= box[2] + 1 and found[3] <= box[3] + 1


def test_rotation_shrink_reduces_boxes_about_their_centre() -> None:
    boxes = np.array([[10, 10, 30, 20]], np.float32)
    angle = 40.0
    matrix = cv2.getRotationMatrix2D((32.0, 32.0), angle, 1.0)
    full = transform_boxes(boxes, matrix)
    shrunk = transform_boxes(boxes, matrix, shrink=True)
    reduction = math.sqrt(max(abs(math.sin(math.radians(angle))), abs(math.cos(math.radians(angle)))))
    np.testing.assert_allclose(
        (shrunk[:, 2:] - shrunk[:, :2]), (full[:, 2:] - full[:, :2]) * reduction, rtol=1e-5
    )
    np.testing.assert_allclose(shrunk[:, :2] + shrunk[:, 2:], full[:, :2] + full[:, 2:], rtol=1e-5)


def test_boxes_of_rectangles_pushed_out_of_view_are_dropped(rect_scene) -> None:
    config = AugmentConfig(**{**OFF, "translate": 0.45})
    dropped = 0
    for seed in range(60):
        image, boxes, classes = rect_scene(64, 48, [(0, 0, 10, 8), (54, 40, 64, 48)], [0, 2])
        out, out_boxes, out_classes = augment_detection(
            image, boxes, classes, config, np.random.default_rng(seed)
        )
        for c in (0, 2):
            visible = int((out[:, :, c] >= 128).sum())
            has_box = c in out_classes.tolist()
            if visible == 0:
                assert not has_box, f"seed {seed}: a box for class {c}, whose pixels all left the image"
                dropped += 1
            if visible >= 24:  # at least 12 px^2 (over half of each counted pixel) of the 80 px^2 shows
                assert has_box, f"seed {seed}: class {c} still shows {visible} px but lost its box"
        assert ((out_boxes >= 0) & (out_boxes <= [64, 48, 64, 48])).all()
    assert dropped > 0


def test_filter_boxes_thresholds() -> None:
    boxes = np.array(
        [
            [-30, -30, -10, -10],  # entirely outside
            [-19, 0, 1, 20],  # 5 % visible
            [10, 10, 11.5, 30],  # 1.5 px wide
            [50, 40, 70, 60],  # a quarter visible
            [5, 5, 25, 25],  # inside
        ],
        np.float32,
    )
    classes = np.arange(5)
    areas = np.full(5, 400.0)
    areas[2] = 30.0
    config = AugmentConfig(min_area_ratio=0.1, min_box_size=2.0)
    kept, kept_classes = filter_boxes(boxes, classes, areas, 60, 50, config)
    assert kept_classes.tolist() == [3, 4]
    np.testing.assert_array_equal(kept, [[50, 40, 60, 50], [5, 5, 25, 25]])
    loose = AugmentConfig(min_area_ratio=0.0, min_box_size=0.0)
    assert filter_boxes(boxes, classes, areas, 60, 50, loose)[1].tolist() == [1, 2, 3, 4]
    strict = AugmentConfig(min_area_ratio=0.3, min_box_size=2.0)
    assert filter_boxes(boxes, classes, areas, 60, 50, strict)[1].tolist() == [4]


def test_area_ratio_is_measured_at_the_output_scale(rect_scene) -> None:
    # A zoom of 0.5 quarters every area; a box still wholly in view keeps all of its area.
    config = AugmentConfig(**{**OFF, "scale": 0.5, "min_area_ratio": 0.9})
    zoomed_out = 0
    for seed in SEEDS:
        image, boxes, classes = rect_scene(64, 48, [(20, 14, 44, 34)], [1])
        _, out_boxes, _ = augment_detection(image, boxes, classes, config, np.random.default_rng(seed))
        draws = np.random.default_rng(seed)
        draws.uniform(0, 0)  # the angle, drawn first
        zoomed_out += draws.uniform(0.5, 1.5) < 0.9
        assert len(out_boxes) == 1, f"seed {seed}: a box wholly in view was dropped"
    assert zoomed_out > 3


@pytest.mark.parametrize("zoom", [2.0, 3.0, 0.5])
def test_warp_matrix_addresses_pixel_edges(zoom: float) -> None:
    """A block spanning pixel edges 4..12 lands on edges 4*zoom..12*zoom, as its box does."""
    from edgecnn.data.augment import _to_pixel_centres

    image = np.zeros((16, 16), np.uint8)
    image[4:12, 4:12] = 255
    matrix = np.diag([zoom, zoom, 1.0])
    size = int(16 * zoom)
    out = cv2.warpAffine(image, _to_pixel_centres(matrix), (size, size), flags=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(out)
    expected = transform_boxes(np.array([[4, 4, 12, 12]], np.float32), matrix)[0]
    assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == expected.tolist()
