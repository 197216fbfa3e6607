"""Pascal VOC XML: reader and writer.

A split is a VOC folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``) whose
``ImageSets/Main/<split>.txt`` lists the image ids, or such a list file itself
(``VOC2007/ImageSets/Main/trainval.txt``). Each id has ``Annotations/<id>.xml``; the image
is ``JPEGImages/<filename>`` (or ``JPEGImages/<id>.jpg``, ``.png``, ...).

VOC corners are 1-based pixel indices, inclusive: ``xmin=1, xmax=W`` covers the whole
width, which is ``x1=0, x2=W`` in edgecnn's corner boxes (the detectron2 reading).
``<difficult>1</difficult>`` is kept per box. ``<size>`` is used when present.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from edgecnn.data._common import Issues, box_problem, clip_box, fmt_box, fmt_num, names_hint, place_image
from edgecnn.data.imagesize import IMAGE_SUFFIXES, read_image_size
from edgecnn.data.records import ImageRecord
from edgecnn.errors import DataError


def voc_list_file(source: Path, split: str) -> tuple[Path, Path]:
    """``(VOC root, image-set list)`` of a split: the list itself or ``ImageSets/Main/<split>.txt``."""
    if source.is_file():
        return source.parent.parent.parent, source
    return source, source / "ImageSets" / "Main" / f"{split}.txt"


def read_voc(sources: Sequence[Path], split: str, names: list[str], issues: Issues) -> list[ImageRecord]:
    """Read a VOC split; images are numbered 1, 2, ... in sorted id order (VOC ids are file stems)."""
    entries: list[tuple[Path, str, Path, int]] = []  # (root, image id, list file, line)
    for source in sources:
        root, list_file = voc_list_file(source, split)
        if not list_file.is_file():
            raise DataError(
                list_file,
                f"image-set list not found (a VOC split needs ImageSets/Main/{split}.txt, "
                "or point the split at a list file)",
            )
        try:
            lines = list_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(list_file, f"cannot read: {exc}") from None
        entries += [(root, line.split()[0], list_file, n) for n, line in enumerate(lines, 1) if line.strip()]
    entries.sort(key=lambda e: (str(e[0]), e[1]))
    records = []
    for image_id, (root, stem, list_file, line) in enumerate(entries, start=1):
        try:
            records.append(_record(root, stem, image_id, names, list_file, line))
        except DataError as exc:
            issues.add(exc)
    return records


def _record(
    root: Path, stem: str, image_id: int, names: list[str], list_file: Path, line: int
) -> ImageRecord:
    xml_path = root / "Annotations" / f"{stem}.xml"
    if not xml_path.is_file():
        raise DataError(list_file, f"annotation file {xml_path} not found", f"line {line}")
    try:
        doc = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).removesuffix(f": line {line}, column {column}")
        raise DataError(xml_path, f"malformed XML: {reason}", f"line {line} column {column + 1}") from None
    image = _find_image(root, stem, doc.findtext("filename"))
    if image is None:
        raise DataError(xml_path, f"image for '{stem}' not found in {root / 'JPEGImages'}", "filename")
    size = _size(doc, xml_path)
    width, height = size if size else read_image_size(image)

    boxes, class_ids, difficult = [], [], []
    for k, obj in enumerate(doc.findall("object"), start=1):
        where = f"object {k}"
        name = (obj.findtext("name") or "").strip()
        if name not in names:
            raise DataError(xml_path, f"class '{name}' not in names {names_hint(names)}", where)
        corners = [obj.findtext(f"bndbox/{tag}") for tag in ("xmin", "ymin", "xmax", "ymax")]
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in corners)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(
                xml_path, f"malformed bndbox {corners} (need numeric xmin ymin xmax ymax)", where
            ) from None
        x1, y1, x2, y2 = xmin - 1, ymin - 1, xmax, ymax
        problem = box_problem(x1, y1, x2, y2, width, height)
        if problem:
            raise DataError(
                xml_path, f"box {fmt_box([xmin, ymin, xmax, ymax])} (xmin ymin xmax ymax) {problem}", where
            )
        flag = (obj.findtext("difficult") or "0").strip()
        if flag not in ("0", "1"):
            raise DataError(xml_path, f"difficult must be 0 or 1, got {flag!r}", where)
        boxes.append(clip_box(x1, y1, x2, y2, width, height))
        class_ids.append(names.index(name))
        difficult.append(flag == "1")
    return ImageRecord(image, image_id, width, height, boxes, class_ids, difficult=difficult)


def _find_image(root: Path, stem: str, filename: str | None) -> Path | None:
    folder = root / "JPEGImages"
    candidates = [folder / filename.strip()] if filename and filename.strip() else []
    candidates += [folder / f"{stem}{suffix}" for suffix in sorted(IMAGE_SUFFIXES)]
    return next((c for c in candidates if c.is_file()), None)


def _size(doc: ET.Element, xml_path: Path) -> tuple[int, int] | None:
    width, height = doc.findtext("size/width"), doc.findtext("size/height")
    if width is None or height is None:
        return None
    try:
        w, h = int(float(width)), int(float(height))
    except ValueError:
        raise DataError(xml_path, f"malformed size {width!r}x{height!r}", "size") from None
    return (w, h) if w > 0 and h > 0 else None  # some tools write 0: read the image instead


def write_voc(
    records: Sequence[ImageRecord], names: Sequence[str], root: str | Path, split: str = "val"
) -> Path:
    """Write records as a VOC folder: ``Annotations/``, ``JPEGImages/`` (copied images) and
    ``ImageSets/Main/<split>.txt``. Corners are written 1-based (see the module docstring);
    ``difficult`` is kept, ``iscrowd`` is dropped.

    Returns:
        The VOC root (the split's entry for data.yaml).
    """
    root = Path(root)
    placed: dict[Path, Path] = {}
    stems = []
    for record in records:
        stem = record.path.stem
        place_image(record.path, root / "JPEGImages" / record.path.name, placed)
        xml_path = root / "Annotations" / f"{stem}.xml"
        if placed.setdefault(xml_path, record.path) != record.path:
            raise ValueError(f"two images named {stem}.* in one VOC split; rename one")
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(_annotation(record, names)).write(xml_path, encoding="utf-8", xml_declaration=True)
        stems.append(stem)
    list_file = root / "ImageSets" / "Main" / f"{split}.txt"
    list_file.parent.mkdir(parents=True, exist_ok=True)
    list_file.write_text("".join(f"{s}\n" for s in stems), encoding="utf-8")
    return root


def _annotation(record: ImageRecord, names: Sequence[str]) -> ET.Element:
    doc = ET.Element("annotation")
    ET.SubElement(doc, "folder").text = "JPEGImages"
    ET.SubElement(doc, "filename").text = record.path.name
    size = ET.SubElement(doc, "size")
    for tag, value in (("width", record.width), ("height", record.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(doc, "segmented").text = "0"
    for box, cls, hard in zip(record.boxes, record.class_ids, record.difficult, strict=True):
        obj = ET.SubElement(doc, "object")
        ET.SubElement(obj, "name").text = names[int(cls)]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(hard))
        bndbox = ET.SubElement(obj, "bndbox")
        x1, y1, x2, y2 = (float(v) for v in box)
        for tag, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bndbox, tag).text = fmt_num(value)
    ET.indent(doc)
    return doc
