"""Pascal VOC XML: reader and writer.

A split is a VOC folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``) whose
``ImageSets/Main/<split>.txt`` lists the image ids (CVAT writes ``default.txt``, used when
``<split>.txt`` is absent; without ``ImageSets/Main`` every annotation is read), or such a
list file itself (``VOC2007/ImageSets/Main/trainval.txt``). Each id has
``Annotations/<id>.xml``; the image is ``JPEGImages/<filename>`` (or ``JPEGImages/<id>.jpg``,
``.png``, ...). Kaggle's lower-case ``annotations/`` + ``images/`` works the same way. A
folder of images with their ``.xml`` beside them (Roboflow, LabelImg) is a split too.

VOC corners are 1-based pixel indices, inclusive: ``xmin=1, xmax=W`` covers the whole
width, which is ``x1=0, x2=W`` in edgecnn's corner boxes (the detectron2 reading).
``<difficult>1</difficult>`` is kept per box; ``truncated``, ``occluded`` and ``<part>``
children are not used. ``<name>`` matches ``names`` exactly, else ignoring case when that is
unambiguous. ``<size>``, when present and non-zero, must be the image's decoded size. A file
with a ``<!DOCTYPE>`` is refused: its entity declarations are what XML bombs are made of.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from edgecnn.data._common import (
    DROPPED,
    Issues,
    box_problem,
    check_annotated_size,
    clip_box,
    fmt_box,
    fmt_num,
    names_hint,
    place_image,
)
from edgecnn.data._files import path_kind, unicode_forms
from edgecnn.data.imagesize import IMAGE_SUFFIXES, read_image_size
from edgecnn.data.records import ImageRecord
from edgecnn.errors import DataError


class _Entry(NamedTuple):
    """One image of a VOC split: its annotation, the folder holding its image, where it is listed."""

    xml: Path
    images: Path
    stem: str
    listed_in: Path
    line: int | None


def read_voc(sources: Sequence[Path], split: str, names: list[str], issues: Issues) -> list[ImageRecord]:
    """Read a VOC split; images are numbered 1, 2, ... in sorted id order (VOC ids are file stems)."""
    entries = [entry for source in sources for entry in _entries(source, split)]
    entries.sort(key=lambda e: (str(e.images), e.stem))
    records = []
    for image_id, entry in enumerate(entries, start=1):
        try:
            records.append(_record(entry, image_id, names, issues))
        except DataError as exc:
            issues.add(exc)
    return records


def voc_folders(root: Path) -> tuple[Path, Path] | None:
    """``(annotations, images)`` folders of a VOC root: ``Annotations/`` + ``JPEGImages/``, or
    Kaggle's ``annotations/`` (holding ``.xml``, unlike COCO's) + ``images/``; else None."""
    annotations = next((root / n for n in ("Annotations", "annotations") if (root / n).is_dir()), None)
    images = next((root / n for n in ("JPEGImages", "images") if (root / n).is_dir()), None)
    if annotations is None or images is None:
        return None
    if annotations.name == "annotations" and next(annotations.glob("*.xml"), None) is None:
        return None
    return annotations, images


def _entries(source: Path, split: str) -> list[_Entry]:
    """The images a split path names: a list file, a VOC root, or a flat folder of images + XML."""
    if source.is_file():
        root, list_file = source.parent.parent.parent, source
        annotations, images = voc_folders(root) or (root / "Annotations", root / "JPEGImages")
    else:
        folders = voc_folders(source)
        if folders is None:  # Roboflow / LabelImg: images and XML side by side
            return [_Entry(xml, source, xml.stem, xml, None) for xml in sorted(source.glob("*.xml"))]
        annotations, images = folders
        root, list_file = source, _list_file(source, split)
        if list_file is None:  # no ImageSets/Main at all: every annotation
            return [_Entry(xml, images, xml.stem, xml, None) for xml in sorted(annotations.glob("*.xml"))]
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(list_file, f"cannot read: {exc}") from None
    stems = [(n, _listed_id(line, annotations)) for n, line in enumerate(lines, 1) if line.strip()]
    return [_Entry(annotations / f"{stem}.xml", images, stem, list_file, n) for n, stem in stems]


def _listed_id(line: str, annotations: Path) -> str:
    """The image id on a line of an image-set list: the whole line when it names an annotation
    (ids are file stems and may hold spaces: ``photo 1``, as CVAT and :func:`write_voc` write
    them), else its first column (a class list, ``aeroplane_train.txt``, has a second column of
    1 / -1 / 0 and names every image)."""
    whole = line.strip()
    if " " in whole and path_kind(annotations / f"{whole}.xml") == "file":
        return whole
    return whole.split()[0]


def _list_file(root: Path, split: str) -> Path | None:
    """``ImageSets/Main/<split>.txt``, else CVAT's ``default.txt``; None without ``ImageSets/Main``."""
    folder = root / "ImageSets" / "Main"
    if not folder.is_dir():
        return None
    for candidate in (folder / f"{split}.txt", folder / "default.txt"):
        if candidate.is_file():
            return candidate
    present = ", ".join(sorted(p.stem for p in folder.glob("*.txt"))) or "none"
    raise DataError(
        folder / f"{split}.txt",
        f"image-set list not found (lists present: {present}); point the split at a list file, "
        f"e.g. {split}: {root.name}/ImageSets/Main/trainval.txt",
    )


def _record(entry: _Entry, image_id: int, names: list[str], issues: Issues) -> ImageRecord:
    xml_path = entry.xml
    kind = path_kind(xml_path)
    if kind != "file":
        problem = "not found" if kind == "missing" else f"is a {kind}, not a file"
        raise DataError(entry.listed_in, f"annotation file {xml_path} {problem}", f"line {entry.line}")
    doc = _parse_xml(xml_path)
    image = _find_image(entry.images, entry.stem, doc.findtext("filename"))
    if image is None:
        raise DataError(xml_path, f"image for '{entry.stem}' not found in {entry.images}", "filename")
    size = _size(doc, xml_path)
    width, height = (
        check_annotated_size(image, *size, xml_path, "size", "<size>") if size else read_image_size(image)
    )

    boxes, class_ids, difficult = [], [], []
    for k, obj in enumerate(doc.findall("object"), start=1):
        where = f"object {k}"
        name = (obj.findtext("name") or "").strip()
        cls = _class_index(name, names)
        if cls is None:
            raise DataError(xml_path, f"class '{name}' not in names {names_hint(names)}", where)
        corners = [obj.findtext(f"bndbox/{tag}") for tag in ("xmin", "ymin", "xmax", "ymax")]
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in corners)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(
                xml_path, f"malformed bndbox {corners} (need numeric xmin ymin xmax ymax)", where
            ) from None
        x1, y1, x2, y2 = xmin - 1, ymin - 1, xmax, ymax
        shown = f"box {fmt_box([xmin, ymin, xmax, ymax])} (xmin ymin xmax ymax)"
        problem = box_problem(x1, y1, x2, y2, width, height)
        if problem:
            raise DataError(xml_path, f"{shown} {problem}", where)
        flag = (obj.findtext("difficult") or "0").strip()
        if flag not in ("0", "1"):
            raise DataError(xml_path, f"difficult must be 0 or 1, got {flag!r}", where)
        box = clip_box(x1, y1, x2, y2, width, height)
        if box is None:
            issues.drop(xml_path, f"{shown} {DROPPED}", where)
            continue
        boxes.append(box)
        class_ids.append(cls)
        difficult.append(flag == "1")
    return ImageRecord(image, image_id, width, height, boxes, class_ids, difficult=difficult)


class _NoDoctype(ET.TreeBuilder):
    """Builds the tree, refusing a DOCTYPE: VOC annotations have none, and the entity
    declarations it would carry can expand a small file without limit (billion laughs,
    quadratic blowup). Entities can only be declared inside a DOCTYPE."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeError


class _DoctypeError(Exception):
    """Raised by :class:`_NoDoctype` to stop the parser at a DOCTYPE."""


def _parse_xml(xml_path: Path) -> ET.Element:
    """The root element of an annotation file.

    Raises:
        DataError: unreadable, malformed, or with a DOCTYPE (see :class:`_NoDoctype`).
    """
    try:
        return ET.parse(xml_path, parser=ET.XMLParser(target=_NoDoctype())).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).removesuffix(f": line {line}, column {column}")
        raise DataError(xml_path, f"malformed XML: {reason}", f"line {line} column {column + 1}") from None
    except _DoctypeError:
        raise DataError(
            xml_path,
            "<!DOCTYPE> is not allowed in a VOC annotation: VOC files have none, and its entity "
            "declarations can expand a small file without limit; remove it",
        ) from None
    except LookupError as exc:  # the XML declaration names an encoding Python does not know
        raise DataError(xml_path, f"malformed XML: {exc}") from None
    except OSError as exc:
        raise DataError(xml_path, f"cannot read: {exc}") from None


def _class_index(name: str, names: list[str]) -> int | None:
    """The index of ``name`` in ``names``: exact, else the one name equal but for case."""
    if name in names:
        return names.index(name)
    folded = [i for i, n in enumerate(names) if n.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _find_image(folder: Path, stem: str, filename: str | None) -> Path | None:
    """The image of an annotation: ``<filename>`` in the images folder (also its last part,
    when a tool wrote a path there, and in both Unicode forms), else ``<stem>.<suffix>``."""
    names: list[str] = []
    if filename and filename.strip():
        written = filename.strip().replace("\\", "/")  # a Windows path
        names += unicode_forms(written) + unicode_forms(written.rsplit("/", 1)[-1])
    names += [f"{stem}{suffix}" for suffix in sorted(IMAGE_SUFFIXES)]
    return next((folder / n for n in dict.fromkeys(names) if path_kind(folder / n) == "file"), None)


def _size(doc: ET.Element, xml_path: Path) -> tuple[int, int] | None:
    """``<size>``'s width and height; None when absent or 0 (some tools write 0: read the image)."""
    width, height = _pixels(doc, "width", xml_path), _pixels(doc, "height", xml_path)
    if width is None or height is None:
        return None
    return (width, height) if width > 0 and height > 0 else None


def _pixels(doc: ET.Element, tag: str, xml_path: Path) -> int | None:
    """``<size><tag>`` as a number of pixels, None when absent.

    Raises:
        DataError: not a whole number (``640.0`` is), or negative.
    """
    text = doc.findtext(f"size/{tag}")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value.is_integer() and value >= 0):
        raise DataError(
            xml_path,
            f"<{tag}> is {text.strip()!r}: the image size must be whole numbers of pixels (0 when unknown)",
            "size",
        )
    return int(value)


def write_voc(
    records: Sequence[ImageRecord],
    names: Sequence[str],
    root: str | Path,
    split: str = "val",
    placed: dict[Path, Path] | None = None,
) -> Path:
    """Write records as a VOC folder: ``Annotations/``, ``JPEGImages/`` (copied images) and
    ``ImageSets/Main/<split>.txt``. Corners are written 1-based (see the module docstring);
    ``difficult`` is kept, ``iscrowd`` is dropped. The splits of a dataset share the folders:
    pass them one ``placed`` dict, so that a name clash between splits is renamed as one within
    a split is (:func:`place_image`) instead of overwriting the other split's image.

    Returns:
        The VOC root (the split's entry for data.yaml).
    """
    root = Path(root)
    placed = {} if placed is None else placed
    stems = []
    for record in records:
        image = place_image(record.path, root / "JPEGImages" / record.path.name, placed)
        xml_path = root / "Annotations" / f"{image.stem}.xml"
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        tree = ET.ElementTree(_annotation(record, names, image.name))
        tree.write(xml_path, encoding="utf-8", xml_declaration=True)
        stems.append(image.stem)
    list_file = root / "ImageSets" / "Main" / f"{split}.txt"
    list_file.parent.mkdir(parents=True, exist_ok=True)
    list_file.write_text("".join(f"{s}\n" for s in stems), encoding="utf-8")
    return root


def _annotation(record: ImageRecord, names: Sequence[str], filename: str) -> ET.Element:
    doc = ET.Element("annotation")
    ET.SubElement(doc, "folder").text = "JPEGImages"
    ET.SubElement(doc, "filename").text = filename
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
