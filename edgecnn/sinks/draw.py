"""Draw detections (boxes and ``label score`` tags) on a BGR frame.

Used by the preview and snapshot sinks, never by the main loop: drawing copies the frame
and runs on the sink's own thread. Colours are a fixed palette indexed by class id, so a
class keeps its colour across frames, processes and sinks.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgecnn.sinks.base import Detection, Masks

#: BGR colours, chosen to stay readable on both dark and bright scenes (class id mod len)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255),  # red
    (50, 205, 50),  # green
    (255, 144, 30),  # blue
    (0, 215, 255),  # gold
    (255, 0, 255),  # magenta
    (255, 255, 0),  # cyan
    (0, 140, 255),  # orange
    (180, 105, 255),  # pink
    (147, 20, 255),  # deep pink
    (208, 224, 64),  # turquoise
)


def color_for(class_id: int) -> tuple[int, int, int]:
    """The BGR colour used for ``class_id`` (palette index ``class_id % len(PALETTE)``)."""
    return PALETTE[class_id % len(PALETTE)]


def draw_masks(image: np.ndarray, masks: Masks, *, copy: bool = True) -> np.ndarray:
    """Shade each mask (darker, half-transparent) and outline it, so that a preview shows
    where detections are dropped. ``masks`` are polygons in fractions of the frame."""
    out = image.copy() if copy else image
    if not masks:
        return out
    height, width = out.shape[:2]
    polygons = [
        np.round(np.asarray(p, dtype=np.float64) * (width - 1, height - 1)).astype(np.int32) for p in masks
    ]
    shade = out.copy()
    cv2.fillPoly(shade, polygons, (40, 40, 40))
    cv2.addWeighted(shade, 0.5, out, 0.5, 0, dst=out)
    thickness = max(1, round(max(width, height) / 640.0))
    cv2.polylines(out, polygons, True, (220, 220, 220), thickness, cv2.LINE_AA)
    return out


def draw_detections(
    image: np.ndarray,
    detections: Sequence[Detection],
    *,
    thickness: int = 0,
    font_scale: float = 0.0,
    copy: bool = True,
    scores: bool = True,
) -> np.ndarray:
    """Draw each detection's box and a ``label 0.87`` tag above it (``label #7 0.87`` for a
    tracked object).

    Detections without a box (classifier top-k) are listed as text in the top-left corner.

    Args:
        image: BGR ``uint8`` frame (H, W, 3).
        detections: boxes in ``image`` pixels, ``(x1, y1, x2, y2)``.
        thickness: line width in pixels; 0 picks one from the frame size (2 px up to 640 px wide).
        font_scale: OpenCV font scale; 0 picks one from the frame size (0.5 at 640 px wide).
        copy: draw on a copy (default) rather than on ``image`` itself.
        scores: put the score in the tag (default); False: the label alone (ground truth).

    Returns:
        The frame with the drawings (a new array when ``copy`` is true).
    """
    out = image.copy() if copy else image
    height, width = out.shape[:2]
    scale = max(width, height) / 640.0
    thickness = thickness or max(2, round(2 * scale))
    font_scale = font_scale or max(0.35, 0.5 * scale)
    font = cv2.FONT_HERSHEY_SIMPLEX
    text_row = 0
    for det in detections:
        color = color_for(det.class_id)
        text = det.label if det.track_id is None else f"{det.label} #{det.track_id}"
        text = f"{text} {det.score:.2f}" if scores else text
        (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
        if det.box is None:
            text_row += th + base + 4
            cv2.putText(out, text, (4, text_row), font, font_scale, color, 1, cv2.LINE_AA)
            continue
        x1, y1, x2, y2 = (round(float(v)) for v in det.box)
        x1, x2 = max(0, min(x1, width - 1)), max(0, min(x2, width - 1))
        y1, y2 = max(0, min(y1, height - 1)), max(0, min(y2, height - 1))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        # the tag sits above the box, or inside it when the box touches the top edge
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
        cv2.rectangle(out, (x1, top), (min(width - 1, x1 + tw + 4), top + th + base + 2), color, -1)
        b, g, r = color
        ink = (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 120 else (255, 255, 255)  # by luma
        cv2.putText(out, text, (x1 + 2, top + th + 1), font, font_scale, ink, 1, cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """JPEG-encode a BGR frame with OpenCV (``quality`` 1-100)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot JPEG-encode a frame of shape {image.shape}")
    return buf.tobytes()
