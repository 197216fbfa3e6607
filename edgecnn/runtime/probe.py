"""Child-process model check: load a ``.tflite``, allocate, invoke once on zeros, report JSON.

:func:`edgecnn.runtime.validate.validate_model` runs this module as
``python -m edgecnn.runtime.probe MODEL [--num-threads N] [--ops]``, because a corrupt model
can crash the interpreter (a segfault) and that must end this child, not the long-running
parent. The result is one stdout line, :data:`MARKER` followed by JSON: the backend, the
input and output tensors and, with ``--ops``, the operators (that takes a second
interpreter), or ``{"error": ..., "kind": ...}`` with exit code 1.

The daemon waits for this child before it loads the model, so it imports only what the
check needs: numpy and the interpreter package (no OpenCV, no pydantic).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edgecnn.errors import EdgecnnError
from edgecnn.runtime.backend import Backend, interpreter_error, load_backend
from edgecnn.runtime.tensors import TensorInfo

MARKER = "edgecnn-probe:"


def _op_names(backend: Backend, path: str) -> list[str]:
    """Operator names in execution order, from an interpreter without delegates (with the
    default XNNPACK delegate, most nodes show up as one ``DELEGATE`` node)."""
    module = sys.modules.get(getattr(backend.interpreter_class, "__module__", ""))
    resolver = getattr(getattr(module, "OpResolverType", None), "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
    if resolver is None:
        return []
    try:
        interpreter = backend.interpreter_class(model_path=path, experimental_op_resolver_type=resolver)
        return [str(op["op_name"]) for op in interpreter._get_ops_details()]
    except Exception:  # the op list is a convenience; the load above is the check
        return []


def probe(path: str, num_threads: int | None = None, ops: bool = True) -> dict[str, Any]:
    """Load, allocate and invoke the model once on zeros; describe its tensors (and, with
    ``ops``, its operators; an empty list otherwise)."""
    import numpy as np  # imported by every interpreter package anyway

    backend = load_backend()
    # not load_interpreter: its stderr capture would cost this child an import of tempfile,
    # and the parent reads this stderr only when there is no result (ModelCheck drops the notice)
    interpreter = backend.make_interpreter(path, num_threads)
    interpreter.allocate_tensors()
    inputs = [TensorInfo.from_details(d) for d in interpreter.get_input_details()]
    for info in inputs:
        interpreter.set_tensor(info.index, np.zeros(info.shape, dtype=info.dtype))
    interpreter.invoke()
    outputs = [TensorInfo.from_details(d) for d in interpreter.get_output_details()]
    return {
        "backend": backend.name,
        "backend_version": backend.version,
        "inputs": [info.to_dict() for info in inputs],
        "outputs": [info.to_dict() for info in outputs],
        "ops": _op_names(backend, path) if ops else [],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m edgecnn.runtime.probe``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m edgecnn.runtime.probe", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--ops", action="store_true", help="also list the operators")
    args = parser.parse_args(argv)
    try:
        result = probe(args.model, args.num_threads, ops=args.ops)
        code = 0
    except EdgecnnError as exc:  # no backend, unsupported tensors: edgecnn's own message
        result, code = {"error": str(exc), "kind": "edgecnn"}, 1
    except Exception as exc:
        result, code = {"error": interpreter_error(exc), "kind": "interpreter"}, 1
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
