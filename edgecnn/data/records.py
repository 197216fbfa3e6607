"""What every dataset format is read into: one :class:`ImageRecord` per image, in a :class:`Split`.

Boxes are ``(N, 4)`` float32 corner boxes (``x1, y1, x2, y2``) in pixels of the image as
``cv2.imread`` returns it, with no "+1" (a box from 0 to 10 is 10 wide), clipped to the
image. Class ids index :attr:`Split.names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Format = Literal["coco", "yolo", "voc", "folders"]
Task = Literal["detect", "classify"]
FORMATS: tuple[Format, ...] = ("coco", "yolo", "voc", "folders")
TASKS: tuple[Task, ...] = ("detect", "classify")


@dataclass(eq=False)
class ImageRecord:
    """One image and its ground truth.

    Args:
        path: the image file.
        image_id: the COCO image id for COCO sources; for the other formats the images of a
            split are numbered 1, 2, ... in sorted path order (prediction files use these ids).
        width: image width in pixels.
        height: image height in pixels.
        boxes: ``(N, 4)`` float32 ``xyxy`` boxes in pixels (detection; empty for classification).
        class_ids: ``(N,)`` int64 class index of each box.
        difficult: ``(N,)`` bool, Pascal VOC's ``difficult`` flag (all False for other formats).
        iscrowd: ``(N,)`` bool, COCO's ``iscrowd`` flag (all False for other formats).
        label: class index of the whole image (classification), else None.

    Example:
        >>> r = ImageRecord(Path("a.png"), 1, 64, 48, boxes=[[1, 2, 30, 40]], class_ids=[0])
        >>> r.boxes.dtype, r.difficult.tolist()
        (dtype('float32'), [False])
    """

    path: Path
    image_id: int
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    difficult: np.ndarray | None = None
    iscrowd: np.ndarray | None = None
    label: int | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        n = len(self.boxes)
        if len(self.class_ids) != n:
            raise ValueError(f"{n} boxes but {len(self.class_ids)} class ids")
        for name in ("difficult", "iscrowd"):
            value = getattr(self, name)
            flags = np.zeros(n, bool) if value is None else np.asarray(value, dtype=bool).reshape(-1)
            if len(flags) != n:
                raise ValueError(f"{n} boxes but {len(flags)} {name} flags")
            setattr(self, name, flags)

    @property
    def ignore(self) -> np.ndarray:
        """``(N,)`` bool: boxes that are regions to ignore rather than objects to find, COCO
        crowd regions and VOC difficult objects. Scoring ignores detections there and does not
        count them as missed (as pycocotools and the VOC devkit do); training leaves them out
        of the targets (as Ultralytics' and detectron2's loaders do)."""
        return self.iscrowd | self.difficult  # type: ignore[operator]


@dataclass(eq=False)
class Split:
    """One split (train, val or test) of a dataset.

    Args:
        name: the split's key in data.yaml.
        task: ``detect`` or ``classify``.
        format: the format the split was read from.
        names: class names; class index ``i`` is ``names[i]``.
        records: the images, sorted by image id.
        skipped: one message per entry left out with ``skip_bad`` (usually a whole image).
        category_ids: COCO category id of each class index, for COCO-style results files: the
            source's own ids for COCO, else the class index.
        dropped: one message per box left out because it has zero width or height (inside
            the image); the rest of its image is kept.
    """

    name: str
    task: Task
    format: Format
    names: list[str]
    records: list[ImageRecord]
    skipped: list[str] = field(default_factory=list)
    category_ids: list[int] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.category_ids:
            self.category_ids = list(range(len(self.names)))
        if len(self.category_ids) != len(self.names):
            raise ValueError(f"{len(self.names)} names but {len(self.category_ids)} category ids")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_boxes(self) -> int:
        """Total number of boxes over all images."""
        return sum(len(r.boxes) for r in self.records)

    def class_counts(self) -> np.ndarray:
        """Per class: boxes (detection) or images (classification), shape ``(len(names),)``."""
        if self.task == "classify":
            ids = np.array([r.label for r in self.records if r.label is not None], dtype=np.int64)
        else:
            ids = np.concatenate([r.class_ids for r in self.records] or [np.zeros(0, np.int64)])
        return np.bincount(ids, minlength=len(self.names))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready overview: format, task, counts per class, skipped entries, dropped boxes."""
        counts = self.class_counts()
        return {
            "format": self.format,
            "task": self.task,
            "images": len(self.records),
            "boxes": self.num_boxes,
            "classes": {name: int(c) for name, c in zip(self.names, counts, strict=True)},
            "skipped": len(self.skipped),
            "skipped_entries": list(self.skipped),
            "dropped": len(self.dropped),
            "dropped_entries": list(self.dropped),
        }
