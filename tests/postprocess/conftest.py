"""Box-set generators, the OpenCV NMS oracle and a docstring-defaults reader for the
postprocess tests."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable

import cv2
import numpy as np


def clustered_boxes(
    rng: np.random.Generator, n: int, num_objects: int, num_classes: int, size: float = 640.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector-like output: ``n`` jittered copies of ``num_objects`` objects (one class each)."""
    obj_wh = rng.uniform(16, 160, (num_objects, 2))
    obj_xy = rng.uniform(0, size, (num_objects, 2))
    obj_cls = rng.integers(0, num_classes, num_objects)
    pick = rng.integers(0, num_objects, n)
    wh = obj_wh[pick] * rng.uniform(0.8, 1.25, (n, 2))
    xy = obj_xy[pick] + rng.normal(0, 0.1, (n, 2)) * obj_wh[pick]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    return boxes, rng.random(n).astype(np.float32), obj_cls[pick]


def uniform_boxes(
    rng: np.random.Generator, n: int, num_classes: int, size: float = 640.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of 8-128 px anywhere in the frame, random classes."""
    wh = rng.uniform(8, 128, (n, 2))
    xy = rng.uniform(0, size, (n, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    return boxes, rng.random(n).astype(np.float32), rng.integers(0, num_classes, n)


def opencv_nms(boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    """``cv2.dnn.NMSBoxesBatched`` with float xywh lists (its Rect2d path), no score cut."""
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
    s = np.asarray(scores, dtype=np.float32)
    floor = float(np.nanmin(s)) - 1.0 if s.size else 0.0
    kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), s.tolist(), np.asarray(class_ids).tolist(), floor, iou)
    return np.asarray(kept, dtype=np.int64).reshape(-1)


def docstring_defaults(func: Callable) -> dict[str, object]:
    """The ``Default X.`` each argument's docstring entry states, parsed as a literal."""
    doc = inspect.getdoc(func) or ""
    args = doc.split("Args:", 1)[1].split("\n\n", 1)[0] if "Args:" in doc else ""
    stated = {}
    for name, text in re.findall(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", args, flags=re.M | re.S):
        found = re.search(r"Default ([^\s(]+?)[.)]?(?:\s|\(|$)", " ".join(text.split()))
        if found:
            raw = found.group(1).rstrip(".")
            stated[name] = ast.literal_eval(raw)
    return stated


def signature_defaults(func: Callable) -> dict[str, object]:
    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
