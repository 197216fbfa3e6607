"""Letterbox / stretch resizing, the inverse box mapping, and the box format helpers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecnn.postprocess.boxes import (
    box_area,
    box_iou,
    clip_boxes,
    cxcywh_to_xyxy,
    scale_boxes,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from edgecnn.postprocess.letterbox import letterbox, stretch


@pytest.mark.parametrize(("src_h", "src_w"), [(480, 640), (640, 480), (100, 100), (37, 211)])
def test_letterbox_keeps_aspect_centres_and_pads_114(src_h: int, src_w: int) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (src_h, src_w, 3), dtype=np.uint8)
    out, info = letterbox(image, 96, 64)
    assert out.shape == (64, 96, 3) and out.dtype == np.uint8
    assert info.scale_x == pytest.approx(info.scale_y, rel=0.05)
    new_w, new_h = round(src_w * info.scale_x), round(src_h * info.scale_y)
    px, py = int(info.pad_x), int(info.pad_y)
    assert px == (96 - new_w) // 2 and py == (64 - new_h) // 2
    expected = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out[py : py + new_h, px : px + new_w], expected)
    mask = np.ones((64, 96), bool)
    mask[py : py + new_h, px : px + new_w] = False
    assert (out[mask] == 114).all()


def test_letterbox_box_round_trip_and_clipping() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    _, info = letterbox(image, 160, 160)
    boxes = np.array([[10, 20, 300, 400], [0, 0, 640, 480]], np.float32)
    np.testing.assert_allclose(info.to_source(info.to_input(boxes)), boxes, atol=1e-3)
    # A box reaching into the padding maps outside the frame and is clipped back to it.
    outside = np.array([[-10, -10, 170, 170]], np.float32)
    clipped = info.to_source(outside)
    np.testing.assert_allclose(clipped, [[0, 0, 640, 480]])
    assert (info.to_source(outside, clip=False)[0, :2] < 0).all()


def test_letterbox_no_scaleup_and_grey() -> None:
    grey = np.full((20, 40), 200, np.uint8)
    out, info = letterbox(grey, 80, 80, scaleup=False, pad_value=0)
    assert out.shape == (80, 80) and info.scale_x == 1.0
    assert out[30:50, 20:60].min() == 200 and out[:30].max() == 0


def test_stretch_maps_boxes_back() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    out, info = stretch(image, 50, 50)
    assert out.shape == (50, 50, 3)
    np.testing.assert_allclose(info.to_source([[0, 0, 25, 25]]), [[0, 0, 100, 50]])


def test_empty_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        letterbox(np.zeros((0, 10, 3), np.uint8), 32, 32)


def test_box_format_round_trips() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (50, 2))
    xyxy = np.concatenate([xy, xy + rng.uniform(1, 50, (50, 2))], axis=1)
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(xyxy)), xyxy)
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(xyxy)), xyxy)
    np.testing.assert_allclose(xyxy_to_xywh([[1, 2, 4, 8]]), [[1, 2, 3, 6]])
    np.testing.assert_allclose(xyxy_to_cxcywh([[0, 0, 4, 8]]), [[2, 4, 4, 8]])
    np.testing.assert_allclose(scale_boxes([[0.5, 0.5, 1, 1]], 640, 480), [[320, 240, 640, 480]])


def test_clip_area_and_iou() -> None:
    np.testing.assert_allclose(clip_boxes([[-5, -5, 200, 200]], 100, 50), [[0, 0, 100, 50]])
    np.testing.assert_allclose(box_area([[0, 0, 10, 10], [5, 5, 4, 4]]), [100, 0])
    iou = box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0]])
