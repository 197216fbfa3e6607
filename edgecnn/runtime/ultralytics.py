"""The settings of an Ultralytics YOLO ``.tflite`` export, read from the metadata it carries.

``yolo export model=yolov8n.pt format=tflite`` appends a ZIP archive to the model file (the
flatbuffer ignores what follows it), holding one member:

* ``metadata.json`` (recent versions: ``zipfile.ZipFile(file, "a").writestr("metadata.json",
  json.dumps(metadata))``), JSON;
* ``temp_meta.txt`` (older versions, through ``tflite_support``'s associated files, which it
  packs the same way), ``str(metadata)``: a Python literal, read with ``ast.literal_eval``.

The document has ``task``, ``names`` (``{"0": "person", ...}``; integer keys in the older
style), ``imgsz`` (``[height, width]``), ``stride``, ``batch``, ``version`` and, in newer
versions, ``args`` (export arguments, with ``nms``), ``channels`` and ``end2end``.
:func:`ultralytics_spec` turns it into a :class:`~edgecnn.runtime.spec.ModelSpec`: labels from
``names``, the input size from the input tensor (``imgsz`` must agree), RGB scaled to 0..1,
letterboxed with grey 114 (classifiers centre-cropped, as Ultralytics' ``CenterCrop``), the
layout from the task and the output shape (``classes``, ``yolo_v8`` or ``yolo_end2end``;
``end2end`` / ``args.nms`` only decide when the shape fits both), and Ultralytics' default
thresholds (conf 0.25, iou 0.7, max_det 300).

The metadata is untrusted input. The archive is looked for in the last :data:`TAIL_BYTES`
of the file; a member that says it is larger than :data:`MAX_METADATA_BYTES` is refused (one
that inflates beyond what it says fails its CRC check); every value used is type-checked, and
values quoted in messages are cut short. Anything malformed is one
:class:`~edgecnn.errors.ModelError` line naming the file; so are segment, pose and obb models.
A ``metadata.json`` with neither ``names`` nor ``"author": "Ultralytics"`` is another tool's
and is ignored. Pure Python (``zipfile``, ``json``, ``ast``): no TensorFlow, no numpy.
"""

from __future__ import annotations

import ast
import io
import json
import reprlib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgecnn.errors import ModelError
from edgecnn.runtime.flatbuffer import ModelBytes, TFLiteFile
from edgecnn.runtime.resolve import anchor_free_layout
from edgecnn.runtime.spec import ModelSpec

#: The archive members, in the order they are looked for.
MEMBERS = ("metadata.json", "temp_meta.txt")
#: The most bytes of a member that are read (names of 1000 classes take some 30 KB).
MAX_METADATA_BYTES = 1 << 20
#: How far from the end of the file the archive is looked for.
TAIL_BYTES = 4 << 20
#: Ultralytics' default prediction thresholds.
ULTRALYTICS_THRESHOLDS = {"conf": 0.25, "iou": 0.7, "max_det": 300}
#: The tasks edgecnn runs, and the other Ultralytics tasks, refused by name.
RUNNABLE_TASKS = ("detect", "classify")
OTHER_TASKS = ("segment", "pose", "obb")

#: Zip headers that name a member: (signature, offset of the name, offset of the name's length).
_ZIP_HEADERS = ((b"PK\x03\x04", 30, 26), (b"PK\x01\x02", 46, 28))  # local header, central directory
#: Untrusted values quoted in messages: short, and never deeper than 3 levels.
_QUOTE = reprlib.Repr()  # (keyword arguments only from Python 3.12)
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlist, _QUOTE.maxdict = 3, 40, 40, 6, 4


def read_ultralytics_metadata(data: ModelBytes, source: str) -> tuple[dict[str, Any], str] | None:
    """The Ultralytics metadata document appended to a ``.tflite`` file, and its member name.

    Returns:
        ``(document, member)``, or None when the file ends in no archive holding a member of
        :data:`MEMBERS`, or in one whose document has neither ``names`` nor ``"author":
        "Ultralytics"`` (another tool's file of that name): a model from elsewhere.

    Raises:
        ModelError: the archive is truncated or corrupt, the member too large, not JSON (not
            a Python literal, for ``temp_meta.txt``) or not a mapping.
    """
    tail = bytes(data[max(0, len(data) - TAIL_BYTES) :])
    try:
        archive = zipfile.ZipFile(io.BytesIO(tail))
    except Exception:  # zipfile raises many types on bytes that only look like an archive
        if _names_a_member(tail):
            raise ModelError(f"{source}: the Ultralytics metadata archive is truncated or corrupt") from None
        return None
    with archive:
        names = set(archive.namelist())
        member = next((name for name in MEMBERS if name in names), None)
        if member is None:
            return None
        where = f"{source}: Ultralytics metadata ({member})"
        info = archive.getinfo(member)
        if info.file_size > MAX_METADATA_BYTES:
            raise ModelError(f"{where} is {info.file_size} bytes; edgecnn reads at most {MAX_METADATA_BYTES}")
        try:
            # zipfile stops at the declared size: a member that inflates beyond it fails its CRC
            with archive.open(info) as stream:
                payload = stream.read(MAX_METADATA_BYTES)
        except Exception as exc:  # bad CRC, unknown compression, encryption, truncated data...
            raise ModelError(f"{where}: the archive is corrupt ({exc})") from None
    document = _parse(payload, member, where)
    if "names" not in document and document.get("author") != "Ultralytics":
        return None
    return document, member


def ultralytics_spec(data: ModelBytes, parsed: TFLiteFile, source: str) -> tuple[ModelSpec, str] | None:
    """The spec an Ultralytics export's metadata gives, checked against its tensors.

    Args:
        data: the model file's bytes.
        parsed: its parsed flatbuffer (the tensor shapes).
        source: the model's name for messages.

    Returns:
        ``(spec, member)`` (the archive member it came from), or None when the file carries
        no Ultralytics metadata.

    Raises:
        ModelError: one line: malformed metadata, a task edgecnn does not run, or metadata
            that does not fit the model's tensors.
    """
    found = read_ultralytics_metadata(data, source)
    if found is None:
        return None
    document, member = found
    inputs = [t.shape for t in parsed.main.input_tensors]
    outputs = [t.shape for t in parsed.main.output_tensors]
    return spec_from_document(document, inputs, outputs, source, member), member


def spec_from_document(
    document: Mapping[str, Any],
    input_shapes: Sequence[Sequence[int]],
    output_shapes: Sequence[Sequence[int]],
    source: str,
    member: str = MEMBERS[0],
) -> ModelSpec:
    """Turn an Ultralytics metadata document into a :class:`ModelSpec` for a model with these
    tensors (see the module docstring for what is read).

    Raises:
        ModelError: one line naming ``source``.
    """
    where = f"{source}: Ultralytics metadata ({member})"
    task = _optional(document, "task", str, where)
    if task in OTHER_TASKS:
        raise ModelError(f"{source} is an Ultralytics {task} model; edgecnn runs detect and classify models")
    if task is not None and task not in RUNNABLE_TASKS:
        raise ModelError(
            f"{where}: unknown task {_QUOTE.repr(task)}; edgecnn runs detect and classify models"
        )
    labels = _labels(document.get("names"), where)
    end2end = _optional(document, "end2end", bool, where)
    args = _optional(document, "args", Mapping, where)
    nms = _optional(args, "nms", bool, f"{where}: args") if args is not None else None
    version = document.get("version")

    if len(input_shapes) != 1 or len(input_shapes[0]) != 4:
        shapes = ", ".join(_shape(s) for s in input_shapes)
        raise ModelError(f"{source}: input tensors {shapes}; edgecnn runs models with one NHWC image input")
    batch, height, width, channels = (int(d) for d in input_shapes[0])
    if batch != 1:
        raise ModelError(f"{source}: exported with batch {batch}; edgecnn runs batch 1 (export with batch=1)")
    imgsz = _imgsz(document.get("imgsz"), where)
    if imgsz is not None and imgsz != (height, width):
        raise ModelError(
            f"{where}: imgsz {list(imgsz)} (height, width) does not match the input tensor "
            f"{_shape(input_shapes[0])}"
        )
    if task is None:  # very old exports: the output shape tells
        task = "classify" if len(output_shapes) == 1 and len(output_shapes[0]) == 2 else "detect"

    if task == "classify":
        if len(output_shapes) != 1 or tuple(output_shapes[0]) != (1, len(labels)):
            raise ModelError(
                f"{source}: output tensors {_shapes(output_shapes)} do not fit its Ultralytics metadata: "
                f"a classifier with {len(labels)} names has one (1, {len(labels)}) output"
            )
        layout = "classes"
    else:
        # what the metadata says of the head: NMS'd rows (True), not (False), or nothing (None)
        known = True if (end2end or nms) else (False if end2end is False else None)
        fitted = anchor_free_layout(output_shapes[0], len(labels), known) if len(output_shapes) == 1 else None
        if fitted is None:
            channels_v8 = 4 + len(labels)
            want = (
                "one (1,K,6) output (end-to-end)"
                if known
                else f"one (1,{channels_v8},N) output (or (1,K,6) for an end-to-end model)"
            )
            raise ModelError(
                f"{source}: output tensors {_shapes(output_shapes)} do not fit its Ultralytics metadata: "
                f"a detector with {len(labels)} names has {want}"
            )
        layout = fitted
    document_spec = {
        "name": Path(source).stem or "model",
        "task": task,
        "labels": labels,
        "input": {
            "width": width,
            "height": height,
            "channels": channels,
            "color_order": "RGB",
            "resize": "crop" if task == "classify" else "letterbox",  # as Ultralytics predicts
            "pad_value": 114,
            "mean": [0.0] * channels,
            "std": [255.0] * channels,
        },
        "output": {"layout": layout, "class_activation": "none"},
        "thresholds": dict(ULTRALYTICS_THRESHOLDS),
        "created_by": (
            f"Ultralytics {version}"[:80]
            if isinstance(version, str) and version.isprintable()
            else "Ultralytics"
        ),
    }
    try:
        return ModelSpec.model_validate(document_spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ModelError(f"{where}: does not give a valid model spec: {loc}: {first['msg']}") from None


def _parse(payload: bytes, member: str, where: str) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{where} is not UTF-8 text") from None
    try:
        # temp_meta.txt is str(dict): a Python literal, never to be eval'ed
        document = json.loads(text) if member == "metadata.json" else ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        kind = "valid JSON" if member == "metadata.json" else "a valid Python literal"
        raise ModelError(f"{where} is not {kind}") from None
    if not isinstance(document, dict):
        raise ModelError(f"{where} is not a mapping of settings (got {type(document).__name__})")
    return document


def _optional(document: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = document.get(key)
    if value is None or isinstance(value, kind):
        return value
    names = {str: "a string", bool: "true or false", Mapping: "a mapping"}
    raise ModelError(f"{where}: {key} must be {names[kind]}, got {_kind(value)}")


def _labels(names: Any, where: str) -> list[str]:
    """``names`` (class id -> name; ids as ints or decimal strings, 0..N-1) as a list."""
    if not isinstance(names, Mapping):
        raise ModelError(f"{where}: names must be a mapping of class id to name, got {_kind(names)}")
    by_id: dict[int, str] = {}
    for key, value in names.items():
        if isinstance(key, int) and not isinstance(key, bool):
            index = key
        elif isinstance(key, str) and key.isascii() and key.isdigit() and len(key) < 10:
            index = int(key)
        else:
            raise ModelError(f"{where}: names has key {_QUOTE.repr(key)}; class ids are 0, 1, 2, ...")
        if not isinstance(value, str) or not value or not value.isprintable():
            raise ModelError(f"{where}: names[{index}] must be a printable string, got {_kind(value)}")
        by_id[index] = value
    if not by_id or sorted(by_id) != list(range(len(by_id))):
        raise ModelError(f"{where}: names must have the class ids 0..N-1, got {len(by_id)} names")
    return [by_id[i] for i in range(len(by_id))]


def _imgsz(value: Any, where: str) -> tuple[int, int] | None:
    """``imgsz`` as ``(height, width)``: ``[h, w]`` or one number for both, or None if absent."""
    if value is None:
        return None
    pair = [value, value] if isinstance(value, int) else value
    if (
        isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)
    ):
        return int(pair[0]), int(pair[1])
    raise ModelError(f"{where}: imgsz must be [height, width] in pixels, got {_kind(value)}")


def _names_a_member(tail: bytes) -> bool:
    """Whether ``tail`` holds a zip header (local or central) of one of :data:`MEMBERS`: then an
    archive that does not open was one, and is damaged."""
    for name in MEMBERS:
        encoded = name.encode()
        pos = tail.find(encoded)
        while pos != -1:
            for signature, name_at, length_at in _ZIP_HEADERS:
                start = pos - name_at
                length = int.from_bytes(tail[start + length_at : start + length_at + 2], "little")
                if start >= 0 and tail[start : start + 4] == signature and length == len(encoded):
                    return True
            pos = tail.find(encoded, pos + 1)
    return False


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {_QUOTE.repr(value)}"


def _shape(shape: Sequence[int]) -> str:
    return "(" + ",".join(str(int(d)) for d in shape) + ")"


def _shapes(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join(_shape(s) for s in shapes)
