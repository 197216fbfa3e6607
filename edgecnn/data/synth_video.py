"""A synthetic video for tracking: shapes moving over a fixed textured background.

The shapes, background and noise are those of :mod:`edgecnn.data.synth`, so a detector
trained on ``edgecnn data synth`` sees them. Each object keeps its shape, size and colour and
moves in a straight line at a constant speed, bouncing off the frame's edges; objects pass
over and under each other (the later one in the list is drawn on top). The ground truth is
written in the MOT Challenge format (``gt.txt``), one line per object and frame::

    frame, id, x, y, w, h, 1, class, visibility

frames and ids from 1, boxes the tight extent of what each shape shows in that frame (as
COCO boxes are), visibility the share of its pixels not hidden by other shapes. Objects
hidden completely are left out of that frame. Deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecnn.data.synth import SHAPES, _background, _contrasting_colour, _draw_mask, _visible_box
from edgecnn.errors import EdgecnnError


@dataclass(frozen=True)
class GroundTruth:
    """One object in one frame: MOT Challenge ``gt.txt`` fields."""

    frame: int
    track_id: int
    class_id: int
    box: tuple[float, float, float, float]
    visibility: float

    def mot_line(self) -> str:
        """``frame,id,x,y,w,h,1,class,visibility``."""
        x1, y1, x2, y2 = self.box
        return (
            f"{self.frame},{self.track_id},{x1:g},{y1:g},{x2 - x1:g},{y2 - y1:g},1,"
            f"{self.class_id},{self.visibility:.3f}"
        )


def write_synth_video(
    path: Path,
    frames: int = 60,
    objects: int = 3,
    imgsz: int = 160,
    num_classes: int = 4,
    fps: float = 10.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[GroundTruth]:
    """Write the video (MJPG in ``.avi``) and ``<stem>.gt.txt`` next to it.

    Args:
        path: the video file to write (``.avi``).
        frames: number of frames.
        objects: shapes in the scene, all visible from the first frame.
        imgsz: frame width and height in pixels.
        num_classes: shapes are of the first ``num_classes`` of :data:`SHAPES`.
        fps: frame rate written into the file.
        seed: random seed.
        progress: called with 1 after each frame.

    Returns:
        The ground truth, frame by frame.

    Raises:
        EdgecnnError: OpenCV cannot write the file.
    """
    rng = np.random.default_rng(seed)
    size = imgsz
    background = _background(rng, size, size)
    movers = []
    for index in range(objects):
        side = max(8, int(rng.uniform(0.18, 0.3) * size))
        class_id = int(rng.integers(0, num_classes))
        position = rng.uniform(0, size - side, 2)
        speed = rng.uniform(0.012, 0.03) * size  # pixels per frame
        angle = rng.uniform(0, 2 * np.pi)
        velocity = speed * np.array([np.cos(angle), np.sin(angle)])
        mask = _draw_mask(SHAPES[class_id], side, rng)
        x, y = (int(v) for v in position)
        colour = _contrasting_colour(rng, background, x, y, side, [m[3] for m in movers])
        movers.append([index + 1, class_id, mask, colour, position, velocity, side])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    if not writer.isOpened():
        raise EdgecnnError(f"{path}: OpenCV cannot write an MJPG video here")
    truth: list[GroundTruth] = []
    try:
        for number in range(1, frames + 1):
            image = background.copy()
            owner = np.full((size, size), -1, np.int32)
            drawn = []
            for k, (_, _, mask, colour, position, _, side) in enumerate(movers):
                x, y = (round(float(v)) for v in position)
                rows, cols = slice(y, y + side), slice(x, x + side)
                alpha = (mask.astype(np.float32) / 255.0)[..., None]
                region = image[rows, cols].astype(np.float32)
                image[rows, cols] = (region * (1 - alpha) + colour[None, None, :] * alpha).astype(np.uint8)
                owner[rows, cols][mask > 127] = k
                drawn.append(int((mask > 127).sum()))
            for k, (track_id, class_id, *_rest) in enumerate(movers):
                box = _visible_box(owner, k)
                if box is not None:
                    shown = int((owner == k).sum()) / drawn[k]
                    truth.append(GroundTruth(number, track_id, class_id, box, shown))
            noise = rng.normal(0, 4.0, image.shape)
            writer.write(np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8))
            for mover in movers:  # move, bouncing off the edges
                position, velocity, side = mover[4], mover[5], mover[6]
                position += velocity
                for axis in (0, 1):
                    if position[axis] < 0 or position[axis] > size - side:
                        velocity[axis] = -velocity[axis]
                        position[axis] = float(np.clip(position[axis], 0, size - side))
            if progress is not None:
                progress(1)
    finally:
        writer.release()
    gt_path = path.with_suffix(".gt.txt")
    gt_path.write_text("".join(t.mot_line() + "\n" for t in truth))
    return truth
