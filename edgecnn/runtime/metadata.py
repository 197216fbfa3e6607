"""Read the edgecnn model spec embedded in a ``.tflite`` file (board side, pure Python).

The spec is the UTF-8 JSON of :class:`~edgecnn.runtime.spec.ModelSpec`, stored in the
buffer that the flatbuffer metadata entry named ``edgecnn`` points at (see
``docs/runtime.md``; :mod:`edgecnn.quantize.metadata_writer` writes it). Reading needs
neither TensorFlow nor the ``flatbuffers`` package.

:func:`carried_spec` and :func:`read_model_spec` also take the settings of an Ultralytics
export (:mod:`edgecnn.runtime.ultralytics`) when the file has no edgecnn metadata: the spec a
model carries, whoever wrote it.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from edgecnn.errors import ModelError
from edgecnn.runtime.flatbuffer import FlatbufferError, ModelBytes, TFLiteFile, parse_model
from edgecnn.runtime.spec import METADATA_NAME, SPEC_FORMAT_VERSION, ModelSpec
from edgecnn.runtime.ultralytics import ultralytics_spec

#: Where a carried spec came from (:func:`carried_spec`), as ``edgecnn inspect`` says it.
FROM_EDGECNN = "edgecnn metadata"
FROM_ULTRALYTICS = "Ultralytics metadata"


@contextmanager
def open_model_file(path: str | Path) -> Iterator[ModelBytes]:
    """Map a model file read-only for the duration of the ``with`` block.

    Raises:
        ModelError: the path is missing, a directory or unreadable.
    """
    p = Path(path)
    if p.is_dir():
        raise ModelError(f"{p}: is a directory, not a .tflite file")
    try:
        handle = p.open("rb")
    except FileNotFoundError:
        raise ModelError(f"{p}: no such file") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot read: {exc.strerror or exc}") from None
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:  # mmap cannot map an empty file
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


#: How a Keras model file starts: ``.keras`` is a zip archive, ``.h5`` an HDF5 file.
_KERAS_MAGIC = (b"PK\x03\x04", b"\x89HDF\r\n\x1a\n")


def parse_model_file(data: ModelBytes, source: str) -> TFLiteFile:
    """:func:`~edgecnn.runtime.flatbuffer.parse_model`, with errors as ``ModelError("source: ...")``;
    a Keras model given where a ``.tflite`` is needed is named as such, with the command that
    converts it."""
    try:
        return parse_model(data)
    except FlatbufferError as exc:
        if bytes(data[:8]).startswith(_KERAS_MAGIC):
            raise ModelError(
                f"{source}: a Keras model, not TFLite; convert it first: "
                f"edgecnn quantize {source} --calib CALIB_DIR --out MODEL.tflite"
            ) from None
        raise ModelError(f"{source}: {exc}") from None


def spec_from_json(payload: bytes, source: str) -> ModelSpec:
    """Validate the JSON of an ``edgecnn`` metadata entry.

    Raises:
        ModelError: not JSON, written by a newer edgecnn, or not a valid spec.
    """
    try:
        document = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{source}: the edgecnn metadata is not valid JSON ({exc})") from None
    version = document.get("format_version", SPEC_FORMAT_VERSION) if isinstance(document, dict) else None
    if isinstance(version, int) and version > SPEC_FORMAT_VERSION:
        raise ModelError(
            f"{source}: the edgecnn metadata has format version {version}; this edgecnn reads up to "
            f"version {SPEC_FORMAT_VERSION}: upgrade edgecnn"
        )
    try:
        return ModelSpec.model_validate(document)
    except ValidationError as exc:
        raise ModelError(
            f"{source}: the edgecnn metadata is not a valid model spec: {_one_line(exc)}"
        ) from None


def spec_from_model(data: ModelBytes, parsed: TFLiteFile, source: str) -> ModelSpec | None:
    """The spec embedded in already-parsed model bytes, or None when there is none."""
    payload = parsed.metadata_bytes(data, METADATA_NAME)
    return None if payload is None else spec_from_json(payload, source)


def carried_spec(data: ModelBytes, parsed: TFLiteFile, source: str) -> tuple[ModelSpec | None, str]:
    """The spec a model carries: its edgecnn metadata, else what its Ultralytics metadata gives.

    Returns:
        ``(spec, origin)``: origin is :data:`FROM_EDGECNN`, ``FROM_ULTRALYTICS + " (member)"``
        (the archive member, ``metadata.json`` or ``temp_meta.txt``), or ``""`` with None.

    Raises:
        ModelError: invalid edgecnn metadata, or malformed or unusable Ultralytics metadata.
    """
    spec = spec_from_model(data, parsed, source)
    if spec is not None:
        return spec, FROM_EDGECNN
    found = ultralytics_spec(data, parsed, source)
    if found is None:
        return None, ""
    return found[0], f"{FROM_ULTRALYTICS} ({found[1]})"


def read_model_spec(path: str | Path) -> ModelSpec | None:
    """The spec the ``.tflite`` file at ``path`` carries (:func:`carried_spec`), or None.

    Raises:
        ModelError: missing or corrupt file, or invalid metadata.
    """
    source = str(path)
    with open_model_file(path) as data:
        return carried_spec(data, parse_model_file(data, source), source)[0]


def read_spec_bytes(data: ModelBytes, source: str = "model") -> ModelSpec | None:
    """The spec embedded in the bytes of a ``.tflite`` model, or None when there is none.

    Raises:
        ModelError: the model is corrupt or its edgecnn metadata is invalid.
    """
    return spec_from_model(data, parse_model_file(data, source), source)


def read_spec(path: str | Path) -> ModelSpec | None:
    """The spec embedded in the ``.tflite`` file at ``path``, or None when it has none.

    Raises:
        ModelError: missing or corrupt file, or invalid edgecnn metadata.
    """
    with open_model_file(path) as data:
        return read_spec_bytes(data, str(path))


def read_metadata(path: str | Path) -> dict[str, bytes]:
    """All metadata entries of a ``.tflite`` file, name to bytes (the first entry wins on duplicates)."""
    with open_model_file(path) as data:
        parsed = parse_model_file(data, str(path))
        return {name: parsed.metadata_bytes(data, name) or b"" for name, _ in parsed.metadata}


def _one_line(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors()[:3]]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
