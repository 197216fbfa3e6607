"""Measure which builtin TFLite operators, up to which version, an interpreter package resolves.

This is how :mod:`edgecnn.package._optable` was made, and how to extend it to a new runtime
release. For every ``BuiltinOperator`` code and version it writes a model holding one
operator of that code and version (no tensors) and asks the interpreter to build it without
delegates: op resolution happens while the interpreter is built, before any tensor is
prepared, so "Didn't find op for builtin opcode" separates a missing kernel from everything
else. The interpreter runs in a child process of the Python that has the runtime installed
(``--python``), so a table for ``tflite-runtime`` can be measured from a workstation venv
that has only ``ai-edge-litert``.

Usage::

    python -m edgecnn.package.opsprobe --runtime ai-edge-litert --update     # this venv
    python -m edgecnn.package.opsprobe --runtime tflite-runtime --python /tmp/tflrt/bin/python --update

prints the measured table as JSON ``{"runtime", "version", "versions": {code: [min, max]}}``, or
with ``--update`` merges it into :mod:`edgecnn.package._optable`.
Writing models needs the ``flatbuffers`` package (a dependency of TensorFlow and LiteRT).
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Operator versions are tried from 1 up to this (the highest in TFLite today is about 13).
MAX_PROBED_VERSION = 32
#: Codes are tried up to this; the schema has 210 today, the interpreter rejects the rest.
MAX_PROBED_CODE = 255

# Runs in the child: one request per stdin line (base64 model), one answer per stdout line.
_CHILD = r"""
import base64, importlib, sys
module = importlib.import_module(sys.argv[1])
Interpreter = module.Interpreter
resolver = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
top = importlib.import_module(sys.argv[1].split(".")[0])
print(getattr(top, "__version__", "unknown"), flush=True)
for line in sys.stdin:
    try:
        Interpreter(model_content=base64.b64decode(line), experimental_op_resolver_type=resolver)
        answer = "ok"
    except Exception as exc:
        text = " ".join(str(exc).split())
        # Op resolution comes first; any other error (missing options) means it resolved.
        missing = ("Didn't find op", "out of range", "CUSTOM builtin_code")
        answer = "missing" if any(m in text for m in missing) else "ok"
    print(answer, flush=True)
"""

_MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}


def one_op_model(code: int, version: int) -> bytes:
    """A TFLite flatbuffer with one subgraph holding one operator of ``code`` and ``version``
    and no tensors (enough for op resolution, not for running)."""
    import flatbuffers

    b = flatbuffers.Builder(256)

    def vector(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def empty_vector() -> int:
        b.StartVector(4, 0, 4)
        return b.EndVector()

    b.StartObject(4)  # OperatorCode
    b.PrependInt8Slot(0, min(code, 127), 0)  # deprecated_builtin_code: 127 = "see builtin_code"
    b.PrependInt32Slot(2, version, 1)
    b.PrependInt32Slot(3, code, 0)
    opcode = b.EndObject()
    op_inputs, op_outputs = empty_vector(), empty_vector()
    b.StartObject(3)  # Operator
    b.PrependUint32Slot(0, 0, 0)
    b.PrependUOffsetTRelativeSlot(1, op_inputs, 0)
    b.PrependUOffsetTRelativeSlot(2, op_outputs, 0)
    operator = b.EndObject()
    operators = vector([operator])
    tensors, inputs, outputs = empty_vector(), empty_vector(), empty_vector()
    b.StartObject(5)  # SubGraph
    for slot, value in enumerate((tensors, inputs, outputs, operators)):
        b.PrependUOffsetTRelativeSlot(slot, value, 0)
    subgraph = b.EndObject()
    b.StartObject(0)  # Buffer 0: the empty sentinel buffer
    buffer = b.EndObject()
    subgraphs, codes, buffers = vector([subgraph]), vector([opcode]), vector([buffer])
    b.StartObject(5)  # Model
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


def probe_runtime(
    runtime: str, python: str = sys.executable, launcher: Sequence[str] = (), max_code: int = MAX_PROBED_CODE
) -> dict[str, Any]:
    """Measure the range of versions of every builtin code that ``runtime`` resolves.

    Args:
        runtime: ``ai-edge-litert`` or ``tflite-runtime``.
        python: an interpreter that can import the runtime.
        launcher: words put before ``python`` (e.g. a command that runs it on another machine).
        max_code: the highest builtin code to try.

    Returns:
        ``{"runtime", "version", "versions": {code: (lowest, highest)}}`` (codes the runtime
        does not resolve at any version are left out).

    Raises:
        RuntimeError: the child cannot import the runtime or stops answering.
    """
    child = subprocess.Popen(
        [*launcher, python, "-c", _CHILD, _MODULES[runtime]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None

    def ask(code: int, version: int) -> bool:
        child.stdin.write(base64.b64encode(one_op_model(code, version)).decode() + "\n")
        child.stdin.flush()
        answer = child.stdout.readline().strip()
        if answer not in ("ok", "missing"):
            raise RuntimeError(f"{runtime}: op {code} v{version}: the child answered {answer!r}")
        return answer == "ok"

    try:
        version = child.stdout.readline().strip()
        if not version:
            raise RuntimeError(f"{python} cannot import {_MODULES[runtime]}")
        versions: dict[int, tuple[int, int]] = {}
        for code in range(max_code + 1):
            # Not always from 1: BROADCAST_TO resolves from version 2 on.
            ok = [v for v in range(1, MAX_PROBED_VERSION + 1) if ask(code, v)]
            if not ok:
                continue
            if ok != list(range(ok[0], ok[-1] + 1)):
                raise RuntimeError(f"{runtime}: op {code} resolves versions {ok}, not one range")
            versions[code] = (ok[0], ok[-1])
    finally:
        child.stdin.close()
        child.wait()
    return {"runtime": runtime, "version": version, "versions": versions}


def builtin_names() -> dict[int, str]:
    """``BuiltinOperator`` code -> name, from the schema module LiteRT ships (else TensorFlow's)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    items = vars(schema.BuiltinOperator).items()
    return {code: name for name, code in sorted(items, key=lambda kv: str(kv[1])) if isinstance(code, int)}


def render_table(names: dict[int, str], tables: dict[tuple[str, str], dict[int, tuple[int, int]]]) -> str:
    """The source of :mod:`edgecnn.package._optable` for these measurements."""
    lines = [
        '"""Builtin TFLite operators each runtime release resolves, with the versions it accepts.',
        "",
        "Generated by ``python -m edgecnn.package.opsprobe --update`` (which measures them by loading",
        "one-operator models in the runtime); do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "#: ``BuiltinOperator`` code -> name (schema of the newest runtime below).",
        "BUILTIN_NAMES: dict[int, str] = {",
        *(f'    {code}: "{name}",' for code, name in sorted(names.items())),
        "}",
        "",
        "#: (runtime, version) -> {builtin code: (lowest, highest) resolvable operator version}.",
        "OP_VERSIONS: dict[tuple[str, str], dict[int, tuple[int, int]]] = {",
    ]
    for key in sorted(tables):
        lines.append(f'    ("{key[0]}", "{key[1]}"): {{')
        row = [f"{code}: {tuple(r)!r}," for code, r in sorted(tables[key].items())]
        for start in range(0, len(row), 6):
            lines.append("        " + " ".join(row[start : start + 6]))
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m edgecnn.package.opsprobe``."""
    parser = argparse.ArgumentParser(
        prog="python -m edgecnn.package.opsprobe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runtime", choices=sorted(_MODULES), default="ai-edge-litert")
    parser.add_argument("--python", default=sys.executable, help="a Python that has the runtime installed")
    parser.add_argument("--update", action="store_true", help="merge the result into _optable.py")
    args = parser.parse_args(argv)
    result = probe_runtime(args.runtime, args.python)
    if not args.update:
        print(json.dumps(result))
        return 0
    from edgecnn.package import _optable

    tables = dict(_optable.OP_VERSIONS)
    tables[(result["runtime"], result["version"])] = result["versions"]
    path = Path(_optable.__file__)
    path.write_text(render_table({**_optable.BUILTIN_NAMES, **builtin_names()}, tables))
    print(f"updated {path}: {result['runtime']} {result['version']}, {len(result['versions'])} builtin ops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
