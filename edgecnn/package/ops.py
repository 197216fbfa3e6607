"""Operator check: does every operator of a model run in the board's TFLite runtime?

A model from a newer converter can hold operators, or operator versions, that an older
interpreter does not have; a model converted with ``SELECT_TF_OPS`` holds ``Flex*`` custom
operators that only full TensorFlow runs. The board would find out when the daemon starts.
:func:`check_model_ops` finds out on the workstation, before a bundle is written: it lists
the model's operator codes with the pure-Python flatbuffer reader and looks each one up in
the table of :mod:`edgecnn.package._optable` (measured per runtime release by
:mod:`edgecnn.package.opsprobe`). Custom operators are always refused: the board runtimes
register none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import ModelError, UserError
from edgecnn.package._optable import BUILTIN_NAMES, OP_VERSIONS
from edgecnn.runtime.metadata import open_model_file, parse_model_file

CUSTOM_CODE = 32  # BuiltinOperator.CUSTOM


@dataclass(frozen=True)
class OpUse:
    """One operator code a model uses: builtin code (32 for custom ops), custom name, version,
    and how many operators of the model (over all subgraphs) use it."""

    builtin_code: int
    custom_code: str | None
    version: int
    count: int

    @property
    def name(self) -> str:
        """``CONV_2D``, the custom op's own name (``FlexErf``), or ``builtin code N`` when unknown."""
        if self.custom_code is not None or self.builtin_code == CUSTOM_CODE:
            return self.custom_code or "CUSTOM (unnamed)"
        return BUILTIN_NAMES.get(self.builtin_code, f"builtin code {self.builtin_code}")

    @property
    def is_custom(self) -> bool:
        """True for custom operators (including TF Select ``Flex*`` ops)."""
        return self.custom_code is not None or self.builtin_code == CUSTOM_CODE


class UnsupportedOpError(ModelError):
    """The model uses operators the target runtime does not have.

    Args:
        message: the one-line error.
        ops: the offending operators.
    """

    def __init__(self, message: str, ops: list[OpUse]) -> None:
        super().__init__(message)
        self.ops = ops


def known_runtimes() -> list[tuple[str, str]]:
    """The (runtime, version) pairs the operator table covers."""
    return sorted(OP_VERSIONS)


def model_ops(path: str | Path) -> list[OpUse]:
    """The operator codes used by the operators of every subgraph, in first-use order.

    Raises:
        ModelError: the file is missing or not a well-formed TFLite model.
    """
    with open_model_file(path) as data:
        parsed = parse_model_file(data, str(path))
    counts: Counter[int] = Counter()
    for subgraph in parsed.subgraphs:
        counts.update(op.opcode_index for op in subgraph.operators)
    ops = []
    for index, count in counts.items():
        code = parsed.operator_codes[index]
        ops.append(OpUse(code.builtin_code, code.custom_code, code.version, count))
    return ops


def _problem(op: OpUse, versions: dict[int, tuple[int, int]]) -> str | None:
    if op.is_custom:
        flex = " (a TF Select op: convert without SELECT_TF_OPS)" if op.name.startswith("Flex") else ""
        return f"{op.name} is a custom operator{flex}"
    if op.builtin_code not in BUILTIN_NAMES:
        return f"{op.name} is unknown (a model from a newer converter?)"
    accepted = versions.get(op.builtin_code)
    if accepted is None:
        return f"{op.name} is not available"
    low, high = accepted
    if not low <= op.version <= high:
        span = f"version {low}" if low == high else f"versions {low}-{high}"
        return f"{op.name} version {op.version} is not available (it has {span})"
    return None


def check_model_ops(path: str | Path, runtime: str, runtime_version: str) -> list[OpUse]:
    """Check that ``runtime`` ``runtime_version`` resolves every operator of the model.

    Args:
        path: the ``.tflite`` file.
        runtime: ``ai-edge-litert`` or ``tflite-runtime``.
        runtime_version: the release the bundle pins, e.g. ``2.3.0``.

    Returns:
        The model's operators (all supported).

    Raises:
        UnsupportedOpError: naming every operator the runtime lacks (custom ops, unknown
            builtin codes, operators or versions the release does not have).
        UserError: the table does not cover this runtime release.
        ModelError: the file is not a readable TFLite model.
    """
    versions = OP_VERSIONS.get((runtime, runtime_version))
    if versions is None:
        covered = ", ".join(f"{name} {version}" for name, version in known_runtimes())
        raise UserError(
            f"no operator table for {runtime} {runtime_version} (covered: {covered}); "
            "measure one with python -m edgecnn.package.opsprobe --update"
        )
    ops = model_ops(path)
    bad = [(op, why) for op in ops if (why := _problem(op, versions)) is not None]
    if bad:
        reasons = "; ".join(why for _, why in bad)
        raise UnsupportedOpError(
            f"{path}: {len(bad)} operator(s) cannot run in {runtime} {runtime_version}: {reasons}",
            [op for op, _ in bad],
        )
    return ops
