"""A minimal, bounds-checked reader of TFLite model files, in pure Python.

Before (or without) handing a ``.tflite`` file to an interpreter the board wants to know:
is it a well-formed TFLite flatbuffer, what are its input and output tensors, and what
metadata does it carry. This module answers with :mod:`struct` alone (no TensorFlow, no
``flatbuffers`` package) and checks every offset it follows against the file size, so a
truncated or corrupt file raises :class:`FlatbufferError` here instead of crashing an
interpreter later.

The layout, as far as it is needed here (schema: ``tensorflow/compiler/mlir/lite/schema/
schema.fbs``; integers are little-endian):

* bytes 0..4 hold a ``uoffset`` (u32) to the root ``Model`` table; bytes 4..8 the file
  identifier ``TFL3``.
* a table at byte ``t`` starts with an ``soffset`` (i32) ``s``; its vtable is at ``t - s``.
  The vtable is a list of u16: its own size, the table's inline size, then one entry per
  field (field ``i`` at vtable byte ``4 + 2 i``): the field's offset inside the table, or 0
  when the field is absent (it then has its default).
* a reference field at byte ``p`` holds a u32 ``u``; the object it refers to is at ``p + u``.
* a vector is a u32 element count followed by the elements; a string is a byte vector
  followed by a NUL byte; a vector of tables holds one ``uoffset`` per element.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3

#: Anything :func:`struct.unpack_from` can read and ``len`` can measure.
ModelBytes = bytes | bytearray | memoryview | mmap.mmap

#: ``TensorType`` codes of the schema, as numpy dtype names.
TENSOR_TYPES: dict[int, str] = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
    18: "bfloat16",
}


class ModelFields:
    """Field indices of ``table Model`` (vtable slot ``4 + 2 * index``)."""

    VERSION = 0
    OPERATOR_CODES = 1
    SUBGRAPHS = 2
    DESCRIPTION = 3
    BUFFERS = 4
    METADATA_BUFFER = 5
    METADATA = 6
    SIGNATURE_DEFS = 7
    EXTERNAL_BUFFER_GROUPS = 8
    EXTERNAL_BUFFERS = 9


class BufferFields:
    """Field indices of ``table Buffer``."""

    DATA = 0
    OFFSET = 1  # models over 2 GB: data lives outside the flatbuffer, at this file offset
    SIZE = 2


class MetadataFields:
    """Field indices of ``table Metadata``."""

    NAME = 0
    BUFFER = 1


_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class FlatbufferError(ValueError):
    """The bytes are not a well-formed TFLite model.

    Args:
        message: what is wrong, as one line without the file name.
        truncated: True when something the structure refers to lies past the end of the data.
    """

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


class Reader:
    """Bounds-checked little-endian reads from model bytes."""

    __slots__ = ("data", "size")

    def __init__(self, data: ModelBytes) -> None:
        self.data = data
        self.size = len(data)

    def check(self, pos: int, length: int, what: str) -> None:
        """Raise :class:`FlatbufferError` unless bytes ``pos .. pos + length`` are in the data."""
        if pos < 0 or length < 0:
            raise FlatbufferError(f"corrupt: {what} has a negative position or length")
        end = pos + length
        if end > self.size:
            raise FlatbufferError(
                f"truncated or corrupt: {what} (bytes {pos}..{end}) extends past the end of the file "
                f"({self.size} bytes)",
                truncated=True,
            )

    def unpack(self, fmt: struct.Struct, pos: int, what: str) -> int:
        """One scalar of format ``fmt`` at ``pos``."""
        self.check(pos, fmt.size, what)
        return fmt.unpack_from(self.data, pos)[0]

    def u32(self, pos: int, what: str) -> int:
        """An unsigned 32-bit integer at ``pos``."""
        return self.unpack(_U32, pos, what)

    def target(self, pos: int, what: str) -> int:
        """Follow the ``uoffset`` stored at ``pos``."""
        return pos + self.u32(pos, what)

    def vector(self, pos: int, elem_size: int, what: str) -> tuple[int, int]:
        """The vector at ``pos``: ``(first element position, element count)``, bounds-checked."""
        if pos % 4:
            raise FlatbufferError(f"corrupt: {what} at byte {pos} is misaligned")
        count = self.u32(pos, f"{what} length")
        self.check(pos + 4, count * elem_size, what)
        return pos + 4, count


class Table:
    """One flatbuffer table; field accessors return ``None`` (or the default) when absent.

    Args:
        reader: the model bytes.
        pos: absolute position of the table.
        what: a name for error messages (``"subgraph 0 tensor 3"``).
    """

    __slots__ = ("pos", "reader", "size", "vtable", "vtable_size", "what")

    def __init__(self, reader: Reader, pos: int, what: str) -> None:
        self.reader = reader
        self.pos = pos
        self.what = what
        reader.check(pos, 4, what)
        if pos % 4:
            raise FlatbufferError(f"corrupt: {what} at byte {pos} is misaligned")
        self.vtable = pos - reader.unpack(_I32, pos, what)
        if self.vtable % 2:
            raise FlatbufferError(f"corrupt: the vtable of {what} is misaligned")
        self.vtable_size = reader.unpack(_U16, self.vtable, f"the vtable of {what}")
        self.size = reader.unpack(_U16, self.vtable + 2, f"the vtable of {what}")
        if self.vtable_size < 4 or self.vtable_size % 2 or self.size < 4:
            raise FlatbufferError(f"corrupt: the vtable of {what} has impossible sizes")
        reader.check(self.vtable, self.vtable_size, f"the vtable of {what}")
        reader.check(pos, self.size, what)

    def field_pos(self, index: int, size: int) -> int | None:
        """Absolute position of field ``index`` (``size`` bytes inline), or None if absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_size:
            return None
        offset = _U16.unpack_from(self.reader.data, self.vtable + slot)[0]
        if offset == 0:
            return None
        if offset + size > self.size:
            raise FlatbufferError(f"corrupt: field {index} of {self.what} lies outside the table")
        return self.pos + offset

    def present_fields(self) -> list[int]:
        """Indices of the fields this table stores."""
        count = (self.vtable_size - 4) // 2
        return [
            i for i in range(count) if _U16.unpack_from(self.reader.data, self.vtable + 4 + 2 * i)[0] != 0
        ]

    def scalar(self, index: int, fmt: struct.Struct, default: int) -> int:
        """A scalar field (``fmt`` gives its type), or ``default`` when absent."""
        pos = self.field_pos(index, fmt.size)
        return default if pos is None else fmt.unpack_from(self.reader.data, pos)[0]

    def target(self, index: int) -> int | None:
        """Where reference field ``index`` points, or None when absent."""
        pos = self.field_pos(index, 4)
        return None if pos is None else self.reader.target(pos, f"field {index} of {self.what}")

    def table(self, index: int, what: str) -> Table | None:
        """The sub-table in field ``index``."""
        pos = self.target(index)
        return None if pos is None else Table(self.reader, pos, what)

    def vector(self, index: int, elem_size: int, what: str) -> tuple[int, int] | None:
        """``(first element position, count)`` of the vector in field ``index``."""
        pos = self.target(index)
        return None if pos is None else self.reader.vector(pos, elem_size, what)

    def numbers(self, index: int, code: str, what: str) -> tuple:
        """The elements of a vector of scalars (``code`` is a :mod:`struct` type code)."""
        vec = self.vector(index, struct.calcsize("<" + code), what)
        if vec is None:
            return ()
        start, count = vec
        return struct.unpack_from(f"<{count}{code}", self.reader.data, start)

    def string(self, index: int, what: str) -> str | None:
        """The string in field ``index`` (invalid UTF-8 is replaced, not raised)."""
        vec = self.vector(index, 1, what)
        if vec is None:
            return None
        start, count = vec
        self.reader.check(start + count, 1, f"the end of {what}")
        if self.reader.data[start + count] != 0:
            raise FlatbufferError(f"corrupt: {what} is not NUL-terminated")
        return bytes(self.reader.data[start : start + count]).decode("utf-8", errors="replace")

    def element_targets(self, index: int, what: str) -> list[int]:
        """Where each element of a vector of tables (or strings) points."""
        vec = self.vector(index, 4, what)
        if vec is None:
            return []
        start, count = vec
        return [self.reader.target(start + 4 * i, f"{what} {i}") for i in range(count)]

    def tables(self, index: int, what: str) -> list[Table]:
        """The tables of a vector of tables, each named ``"{what} {i}"``."""
        return [
            Table(self.reader, pos, f"{what} {i}") for i, pos in enumerate(self.element_targets(index, what))
        ]


@dataclass(frozen=True)
class TensorDesc:
    """A tensor as the file describes it (``dtype`` is a numpy dtype name)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()


@dataclass(frozen=True)
class OperatorDesc:
    """One operator: the index of its operator code and its tensor indices (-1: optional)."""

    opcode_index: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class SubgraphDesc:
    """One subgraph; the first one of a model is the main graph."""

    name: str
    tensors: tuple[TensorDesc, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[OperatorDesc, ...]

    @property
    def input_tensors(self) -> list[TensorDesc]:
        """The input tensors, in input order."""
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[TensorDesc]:
        """The output tensors, in output-index order."""
        return [self.tensors[i] for i in self.outputs]


@dataclass(frozen=True)
class OperatorCodeDesc:
    """An operator code: a ``BuiltinOperator`` number, or a custom op name."""

    builtin_code: int
    custom_code: str | None
    version: int


@dataclass(frozen=True)
class BufferDesc:
    """Where a buffer's bytes are in the file (``length`` 0: empty); ``external``: a >2 GB model's
    ``offset``/``size`` pair rather than an inline data vector."""

    start: int
    length: int
    external: bool = False


@dataclass(frozen=True)
class TFLiteFile:
    """The parts of a ``.tflite`` file that edgecnn reads, all bounds-checked."""

    size: int
    version: int
    description: str
    operator_codes: tuple[OperatorCodeDesc, ...]
    subgraphs: tuple[SubgraphDesc, ...]
    buffers: tuple[BufferDesc, ...]
    metadata: tuple[tuple[str, int], ...]  # (name, buffer index) in file order
    signature_keys: tuple[str, ...]

    @property
    def main(self) -> SubgraphDesc:
        """The main (first) subgraph."""
        return self.subgraphs[0]

    def metadata_bytes(self, data: ModelBytes, name: str) -> bytes | None:
        """The bytes of the first metadata entry called ``name``, or None."""
        for entry, index in self.metadata:
            if entry == name:
                buf = self.buffers[index]
                return bytes(data[buf.start : buf.start + buf.length])
        return None


def root_table(data: ModelBytes) -> Table:
    """Check the size and ``TFL3`` identifier and return the root ``Model`` table."""
    reader = Reader(data)
    if reader.size == 0:
        raise FlatbufferError("empty file (0 bytes)")
    if reader.size < 8:
        raise FlatbufferError(f"too short to be a TFLite model ({reader.size} bytes)", truncated=True)
    if bytes(data[4:8]) != FILE_IDENTIFIER:
        raise FlatbufferError("not a TFLite model (no TFL3 identifier)")
    return Table(reader, reader.u32(0, "the root offset"), "the Model table")


def parse_model(data: ModelBytes) -> TFLiteFile:
    """Walk a TFLite model and check every table, vector and index it holds.

    Checked: the identifier, that every table, vtable, vector and string lies inside the
    data, alignment, that tensor, buffer, operator-code and subgraph indices are in range,
    and that external (>2 GB model) buffer ranges are inside the file. Operator options
    tables are checked for bounds only (their fields depend on the operator).

    Raises:
        FlatbufferError: with one line saying what is wrong.
    """
    model = root_table(data)
    reader = model.reader
    version = model.scalar(ModelFields.VERSION, _U32, 0)
    if version != SCHEMA_VERSION:
        raise FlatbufferError(f"corrupt or unsupported: TFLite schema version {version}, expected 3")
    buffers = tuple(_buffer(reader, t) for t in model.tables(ModelFields.BUFFERS, "buffer"))
    codes = tuple(_operator_code(t) for t in model.tables(ModelFields.OPERATOR_CODES, "operator code"))
    subgraph_tables = model.tables(ModelFields.SUBGRAPHS, "subgraph")
    if not subgraph_tables:
        raise FlatbufferError("corrupt: the model has no subgraphs")
    subgraphs = tuple(
        _subgraph(reader, table, i, len(buffers), len(codes)) for i, table in enumerate(subgraph_tables)
    )
    metadata = []
    for table in model.tables(ModelFields.METADATA, "metadata entry"):
        name = table.string(MetadataFields.NAME, f"the name of {table.what}") or ""
        index = table.scalar(MetadataFields.BUFFER, _U32, 0)
        _check_index(index, len(buffers), f"{table.what} ({name!r}) refers to buffer")
        metadata.append((name, index))
    for index in model.numbers(ModelFields.METADATA_BUFFER, "i", "metadata buffer list"):
        _check_index(index, len(buffers), "the metadata buffer list refers to buffer")
    keys = []
    for table in model.tables(ModelFields.SIGNATURE_DEFS, "signature"):
        keys.append(table.string(2, f"the key of {table.what}") or "")
        _check_index(table.scalar(4, _U32, 0), len(subgraphs), f"{table.what} refers to subgraph")
        for field in (0, 1):
            for tmap in table.tables(field, f"{table.what} tensor map"):
                tmap.string(0, f"the name of {tmap.what}")
    for index in (ModelFields.EXTERNAL_BUFFER_GROUPS, ModelFields.EXTERNAL_BUFFERS):
        model.tables(index, "external buffer entry")  # bounds only: they point into side files
    return TFLiteFile(
        size=reader.size,
        version=version,
        description=model.string(ModelFields.DESCRIPTION, "the model description") or "",
        operator_codes=codes,
        subgraphs=subgraphs,
        buffers=buffers,
        metadata=tuple(metadata),
        signature_keys=tuple(keys),
    )


def _check_index(index: int, count: int, what: str) -> None:
    if not 0 <= index < count:
        raise FlatbufferError(f"corrupt: {what} {index}, but there are only {count}")


def _buffer(reader: Reader, table: Table) -> BufferDesc:
    vec = table.vector(BufferFields.DATA, 1, f"the data of {table.what}")
    offset = table.scalar(BufferFields.OFFSET, _U64, 0)
    if offset > 1:  # the schema: "only valid if > 1"
        size = table.scalar(BufferFields.SIZE, _U64, 0)
        reader.check(offset, size, f"the external data of {table.what}")
        return BufferDesc(offset, size, external=True)
    return BufferDesc(0, 0) if vec is None else BufferDesc(*vec)


def _operator_code(table: Table) -> OperatorCodeDesc:
    deprecated = table.scalar(0, _I8, 0)
    builtin = table.scalar(3, _I32, 0)
    return OperatorCodeDesc(
        # The schema's rule: the larger of the byte-sized legacy field and the int32 field.
        builtin_code=max(deprecated, builtin),
        custom_code=table.string(1, f"the custom name of {table.what}"),
        version=table.scalar(2, _I32, 1),
    )


def _subgraph(reader: Reader, table: Table, number: int, n_buffers: int, n_codes: int) -> SubgraphDesc:
    what = f"subgraph {number}"
    tensors = tuple(_tensor(t, i, n_buffers) for i, t in enumerate(table.tables(0, f"{what} tensor")))
    count = len(tensors)
    inputs = table.numbers(1, "i", f"the inputs of {what}")
    outputs = table.numbers(2, "i", f"the outputs of {what}")
    for index in (*inputs, *outputs):
        _check_index(index, count, f"{what} input/output refers to tensor")
    operators = []
    for op in table.tables(3, f"{what} operator"):
        opcode = op.scalar(0, _U32, 0)
        _check_index(opcode, n_codes, f"{op.what} refers to operator code")
        op_in = op.numbers(1, "i", f"the inputs of {op.what}")
        op_out = op.numbers(2, "i", f"the outputs of {op.what}")
        for index in (*op_in, *op_out, *op.numbers(9, "i", f"the intermediates of {op.what}")):
            if index != -1:
                _check_index(index, count, f"{op.what} refers to tensor")
        for options in (4, 13):  # builtin_options, builtin_options_2 (union tables)
            op.table(options, f"the options of {op.what}")
        op.vector(5, 1, f"the custom options of {op.what}")
        op.numbers(8, "B", f"the mutating inputs of {op.what}")
        large_offset = op.scalar(10, _U64, 0)
        if large_offset > 1:
            reader.check(large_offset, op.scalar(11, _U64, 0), f"the large custom options of {op.what}")
        operators.append(OperatorDesc(opcode, op_in, op_out))
    return SubgraphDesc(
        name=table.string(4, f"the name of {what}") or "",
        tensors=tensors,
        inputs=inputs,
        outputs=outputs,
        operators=tuple(operators),
    )


def _tensor(table: Table, index: int, n_buffers: int) -> TensorDesc:
    what = table.what
    shape = table.numbers(0, "i", f"the shape of {what}")
    type_code = table.scalar(1, _I8, 0)
    buffer = table.scalar(2, _U32, 0)
    _check_index(buffer, n_buffers, f"{what} refers to buffer")
    name = table.string(3, f"the name of {what}") or ""
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quant = table.table(4, f"the quantisation of {what}")
    if quant is not None:
        quant.numbers(0, "f", f"the min of {quant.what}")
        quant.numbers(1, "f", f"the max of {quant.what}")
        scales = quant.numbers(2, "f", f"the scales of {quant.what}")
        zero_points = quant.numbers(3, "q", f"the zero points of {quant.what}")
        quant.table(5, f"the details of {quant.what}")
    table.table(6, f"the sparsity of {what}")
    table.numbers(7, "i", f"the shape signature of {what}")
    table.tables(9, f"the variant types of {what}")
    return TensorDesc(
        index=index,
        name=name,
        shape=shape,
        dtype=TENSOR_TYPES.get(type_code, f"type{type_code}"),
        buffer=buffer,
        scales=scales,
        zero_points=zero_points,
    )
