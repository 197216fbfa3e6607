"""Embed an edgecnn model spec in a ``.tflite`` file (a flatbuffer ``Model.metadata`` entry).

The entry is a ``Metadata{name: "edgecnn", buffer: i}`` table in ``Model.metadata``;
``Model.buffers[i]`` holds the spec as UTF-8 JSON. The result is still a plain TFLite
model: interpreters ignore metadata they do not know. Writing again replaces the entry.

How: a flatbuffer can only refer forward, and the root ``Model`` table is near the start,
so rather than re-serialising the whole model (what tflite_support's ``MetadataPopulator``
does through the generated object API: it needs TensorFlow's schema module and rewrites
every weight buffer) the writer *prepends* a new header and a new root ``Model`` table.
The new table copies the old one's fields as references to the old, unchanged objects,
except ``buffers`` and ``metadata``, which become new vectors with the edgecnn buffer and
entry added (or swapped in when replacing). The old bytes follow
unchanged, shifted by a multiple of 16 so every alignment inside them still holds; the old
root table becomes unreferenced (about 100 bytes, plus the old JSON when replacing).

Pure Python; no TensorFlow or ``flatbuffers`` package needed. Models over 2 GB, whose
buffers sit at absolute file offsets past the flatbuffer, are refused.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from edgecnn.errors import ModelError
from edgecnn.runtime.flatbuffer import (
    FILE_IDENTIFIER,
    BufferFields,
    FlatbufferError,
    MetadataFields,
    ModelBytes,
    ModelFields,
    parse_model,
    root_table,
)
from edgecnn.runtime.spec import METADATA_NAME, ModelSpec

_SHIFT_ALIGN = 16  # the schema's largest alignment (Buffer.data is force_align: 16)
_KNOWN_MODEL_FIELDS = set(range(ModelFields.EXTERNAL_BUFFERS + 1))

# A 4-byte field or vector element: ("u32", value), ("new", label in the prefix) or
# ("old", position in the old model).
_Slot = tuple[str, Any]


class _Prefix:
    """Bytes written front to back, with references resolved once the prefix length is known.

    A reference targets either a label (an object later in the prefix) or a position in
    the old model, which moves by the final prefix length.
    """

    def __init__(self) -> None:
        self.out = bytearray()
        self.labels: dict[str, int] = {}
        self._refs: list[tuple[int, str | None, int]] = []  # (where, label, old position)

    def align(self, n: int, extra: int = 0) -> None:
        """Pad with zeros until ``len + extra`` is a multiple of ``n``."""
        self.out += bytes(-(len(self.out) + extra) % n)

    def label(self, name: str) -> None:
        """Name the current position."""
        self.labels[name] = len(self.out)

    def u32(self, value: int) -> None:
        """Write an unsigned 32-bit integer."""
        self.out += struct.pack("<I", value)

    def slot(self, kind: str, value: Any) -> None:
        """Write one 4-byte field or vector element."""
        if kind == "u32":
            self.u32(value)
        elif kind == "new":
            self._refs.append((len(self.out), value, 0))
            self.u32(0)
        else:
            self._refs.append((len(self.out), None, value))
            self.u32(0)

    def table(self, label: str, fields: dict[int, _Slot]) -> None:
        """A table whose fields are all 4 bytes, with its vtable just before it."""
        order = sorted(fields)
        slots = [0] * (max(order) + 1)
        for k, index in enumerate(order):
            slots[index] = 4 + 4 * k
        self.align(2)
        vtable = len(self.out)
        self.out += struct.pack(f"<{2 + len(slots)}H", 4 + 2 * len(slots), 4 + 4 * len(order), *slots)
        self.align(4)
        self.label(label)
        self.out += struct.pack("<i", len(self.out) - vtable)
        for index in order:
            self.slot(*fields[index])

    def ref_vector(self, label: str, elements: list[_Slot]) -> None:
        """A vector of references (to tables)."""
        self.align(4)
        self.label(label)
        self.u32(len(elements))
        for element in elements:
            self.slot(*element)

    def byte_vector(self, label: str, data: bytes, terminator: bool = False) -> None:
        """A byte vector (16-byte aligned data, like ``Buffer.data``) or, with ``terminator``, a string."""
        self.align(4 if terminator else _SHIFT_ALIGN, extra=4)
        self.label(label)
        self.u32(len(data))
        self.out += data
        if terminator:
            self.out += b"\0"

    def finish(self, old: ModelBytes) -> bytes:
        """Pad to a multiple of 16, resolve references and append the old model."""
        self.align(_SHIFT_ALIGN)
        shift = len(self.out)
        for where, label, old_pos in self._refs:
            target = self.labels[label] if label is not None else old_pos + shift
            if target <= where:
                raise AssertionError("flatbuffer references must point forward")
            struct.pack_into("<I", self.out, where, target - where)
        return bytes(self.out) + bytes(old)


def embed_metadata(model: ModelBytes, name: str, payload: bytes) -> bytes:
    """Return ``model`` with a metadata entry ``name`` holding ``payload``, replacing any old one.

    Args:
        model: the bytes of a ``.tflite`` model.
        name: the metadata entry's name.
        payload: the bytes to store.

    Raises:
        ModelError: the model is corrupt, over 2 GB with external buffers, or has Model fields
            newer than this writer knows.
    """
    try:
        parsed = parse_model(model)
        root = root_table(model)
    except FlatbufferError as exc:
        raise ModelError(f"cannot add metadata: {exc}") from None
    unknown = set(root.present_fields()) - _KNOWN_MODEL_FIELDS
    external = (
        any(b.external for b in parsed.buffers)
        or root.target(ModelFields.EXTERNAL_BUFFERS) is not None
        or root.target(ModelFields.EXTERNAL_BUFFER_GROUPS) is not None
    )
    if unknown or external:
        why = f"Model fields {sorted(unknown)} are unknown" if unknown else "it stores buffers outside"
        raise ModelError(f"cannot add metadata: {why} the flatbuffer (models over 2 GB are not supported)")

    buffer_targets = root.element_targets(ModelFields.BUFFERS, "buffer")
    entry_targets = root.element_targets(ModelFields.METADATA, "metadata entry")
    kept = [t for t, (entry, _) in zip(entry_targets, parsed.metadata, strict=True) if entry != name]
    replaced = [index for entry, index in parsed.metadata if entry == name]
    used = {t.buffer for g in parsed.subgraphs for t in g.tensors}
    used |= {index for entry, index in parsed.metadata if entry != name}
    if replaced and replaced[0] not in used:
        slot = replaced[0]  # reuse the old entry's buffer index: the buffer count stays the same
    else:
        slot = len(buffer_targets)
        buffer_targets.append(-1)

    out = _Prefix()
    out.slot("new", "model")
    out.out += FILE_IDENTIFIER
    fields: dict[int, _Slot] = {}
    for index in root.present_fields():
        if index == ModelFields.VERSION:
            fields[index] = ("u32", parsed.version)
        else:
            fields[index] = ("old", root.target(index))
    fields[ModelFields.BUFFERS] = ("new", "buffers")
    fields[ModelFields.METADATA] = ("new", "metadata")
    out.table("model", fields)
    out.ref_vector(
        "buffers",
        [("new", "edgecnn_buffer") if i == slot else ("old", t) for i, t in enumerate(buffer_targets)],
    )
    out.ref_vector("metadata", [("old", t) for t in kept] + [("new", "edgecnn_entry")])
    out.table(
        "edgecnn_entry",
        {MetadataFields.NAME: ("new", "edgecnn_name"), MetadataFields.BUFFER: ("u32", slot)},
    )
    out.byte_vector("edgecnn_name", name.encode("utf-8"), terminator=True)
    out.table("edgecnn_buffer", {BufferFields.DATA: ("new", "edgecnn_data")})
    out.byte_vector("edgecnn_data", payload)
    return out.finish(model)


def embed_spec(model: ModelBytes, spec: ModelSpec) -> bytes:
    """Return ``model`` with ``spec`` embedded as the ``edgecnn`` metadata entry (UTF-8 JSON)."""
    return embed_metadata(model, METADATA_NAME, spec.to_json().encode("utf-8"))


def write_spec(path: str | Path, spec: ModelSpec, output: str | Path | None = None) -> Path:
    """Embed ``spec`` in the ``.tflite`` file at ``path``, in place or into ``output``.

    The file is written to a temporary name and renamed, so a reader never sees half a model.

    Returns:
        The path written.
    """
    source = Path(path)
    target = Path(output) if output is not None else source
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ModelError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        result = embed_spec(data, spec)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(result)
        os.chmod(tmp, source.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
