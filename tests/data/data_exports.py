"""Builders for files the way real exporters write them (Roboflow, CVAT, Label Studio, LabelImg,
the official COCO / VOC releases, Ultralytics): tiny images, EXIF-rotated JPEGs, COCO JSON and
VOC XML written by hand rather than by edgecnn's own writers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

W, H = 64, 48


def image(path: Path, width: int = W, height: int = H, seed: int = 0) -> Path:
    """A noise image, format from the suffix (written by Pillow for suffixes OpenCV maps oddly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"):
        ok, data = cv2.imencode(path.suffix.lower(), pixels)
        assert ok
        path.write_bytes(data.tobytes())
    else:
        Image.fromarray(pixels).save(path)
    return path


def exif_jpeg(path: Path, orientation: int, width: int = W, height: int = H) -> Path:
    """A JPEG whose stored pixels are ``width`` x ``height``, with EXIF Orientation set (Pillow)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(orientation).integers(0, 256, (height, width, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, "JPEG", exif=exif.tobytes())
    return path


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Write a JSON document, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def voc_xml(
    path: Path,
    filename: str,
    objects: list[dict[str, Any]],
    size: tuple[int, int, int] | None = (W, H, 3),
) -> Path:
    """A LabelImg / VOC2007 style annotation. Each object: ``name``, ``box`` (xmin ymin xmax ymax
    as written), optional ``difficult``, ``truncated``, ``occluded`` and ``parts`` (name, box)."""
    size_xml = (
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>{size[2]}</depth></size>"
        if size
        else ""
    )
    body = []
    for obj in objects:
        flags = "".join(f"<{k}>{obj[k]}</{k}>" for k in ("truncated", "occluded", "difficult") if k in obj)
        parts = "".join(f"<part><name>{n}</name>{_bndbox(b)}</part>" for n, b in obj.get("parts", []))
        body.append(
            f"<object><name>{obj['name']}</name><pose>Unspecified</pose>{flags}{_bndbox(obj['box'])}{parts}</object>"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>"
        f"<path>C:\\Users\\me\\labelling\\{filename}</path><source><database>Unknown</database></source>"
        f"{size_xml}<segmented>0</segmented>{''.join(body)}</annotation>\n"
    )
    return path


def _bndbox(box: tuple[object, ...]) -> str:
    tags = ("xmin", "ymin", "xmax", "ymax")
    return "<bndbox>" + "".join(f"<{t}>{v}</{t}>" for t, v in zip(tags, box, strict=True)) + "</bndbox>"


def truncate(path: Path, keep: float = 0.6) -> Path:
    """Cut a file to ``keep`` of its length (a download that stopped half way)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
