"""Check a model file before a long-running process loads it.

TFLite interpreters trust their input: TensorFlow's security policy says an untrusted
model can crash them, and a truncated file made ai-edge-litert 2.2 segfault. So
:func:`validate_model` works in two stages and never lets the caller crash:

1. In this process, pure Python: the file exists and is a regular file, has the ``TFL3``
   identifier, and every table, vector and index of the flatbuffer lies in bounds
   (:func:`~edgecnn.runtime.flatbuffer.parse_model`); the spec the model carries, if any
   (edgecnn metadata, else Ultralytics metadata: :func:`~edgecnn.runtime.metadata.carried_spec`),
   is valid and fits the input and output tensor shapes.
2. In a child process (``python -m edgecnn.runtime.probe``): the interpreter loads the
   model, allocates tensors and runs once on zeros. A crash (a signal), a timeout or an
   error there becomes one :class:`~edgecnn.errors.ModelError` line here.

:func:`start_model_check` does stage 1 and starts stage 2 without waiting for it, so that
a caller can do other start-up work while the child runs (:class:`ModelCheck`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import edgecnn
from edgecnn._stderr import drop_lines
from edgecnn.errors import ModelError
from edgecnn.runtime.backend import XNNPACK_NOTICE
from edgecnn.runtime.metadata import FROM_EDGECNN, carried_spec, open_model_file, parse_model_file
from edgecnn.runtime.probe import MARKER
from edgecnn.runtime.resolve import check_spec_matches_model, scale_order
from edgecnn.runtime.spec import ANCHOR_FREE_LAYOUTS, ModelSpec
from edgecnn.runtime.tensors import TensorInfo

PROBE_MODULE = "edgecnn.runtime.probe"


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`validate_model` found out about a model."""

    path: str
    size: int
    backend: str
    backend_version: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    ops: tuple[str, ...]  # builtin operator names in execution order (empty: not asked for or not available)
    metadata_names: tuple[str, ...]  # names of all flatbuffer metadata entries
    spec: ModelSpec | None
    spec_origin: str = ""  # where the spec came from: "edgecnn metadata", "Ultralytics metadata (...)"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the (single) input tensor."""
        return self.inputs[0].shape

    @property
    def input_dtype(self) -> str:
        """Dtype name of the input tensor."""
        return self.inputs[0].dtype

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        """Output tensor shapes, in output-index order."""
        return [t.shape for t in self.outputs]

    @property
    def output_dtypes(self) -> list[str]:
        """Output tensor dtype names, in output-index order."""
        return [t.dtype for t in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``edgecnn inspect --json`` prints)."""
        return {
            "path": self.path,
            "size": self.size,
            "backend": self.backend,
            "backend_version": self.backend_version,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "ops": list(self.ops),
            "metadata": list(self.metadata_names),
            "spec": None if self.spec is None else self.spec.model_dump(mode="json"),
            "spec_origin": self.spec_origin,
        }

    def describe(self) -> str:
        """A human-readable summary (what ``edgecnn inspect`` prints)."""
        lines = [
            f"model    {self.path}",
            f"size     {self.size} bytes ({self.size / 1024:.1f} KiB)",
            f"backend  {self.backend} {self.backend_version}",
        ]
        for kind, tensors in (("input", self.inputs), ("output", self.outputs)):
            for i, t in enumerate(tensors):
                quant = f"scale {t.scale:.6g} zero_point {t.zero_point}" if t.scale else "not quantised"
                shape = "(" + ",".join(map(str, t.shape)) + ")"
                lines.append(f"{f'{kind} {i}':<8} {shape} {t.dtype} {quant}  name {t.name}")
        if self.ops:
            counts = Counter(self.ops)
            lines.append("ops      " + ", ".join(f"{name} x{n}" for name, n in counts.items()))
        lines.append("metadata " + (", ".join(self.metadata_names) or "none"))
        lines.extend(self._describe_spec())
        return "\n".join(lines)

    def _describe_spec(self) -> list[str]:
        spec = self.spec
        if spec is None:
            return ["spec     no edgecnn metadata"]
        inp, out, th = spec.input, spec.output, spec.thresholds
        lines = []
        if self.spec_origin not in ("", FROM_EDGECNN):
            lines.append(f"spec     no edgecnn metadata; from {self.spec_origin}")
        lines += [
            f"spec     {spec.name}: task {spec.task}, {spec.num_classes} labels: {', '.join(spec.labels)}",
            f"  input  {inp.width}x{inp.height} px (WxH), {inp.channels} channel(s)"
            f" {'grey' if inp.channels == 1 else inp.color_order}, {inp.resize}"
            f"{f' pad {inp.pad_value}' if inp.resize == 'letterbox' else ''},"
            f" mean {list(inp.mean)} std {list(inp.std)}",
            f"  output {out.layout}, class activation {out.class_activation}",
        ]
        if out.layout in ANCHOR_FREE_LAYOUTS:
            index = scale_order(spec, self.output_shapes)[0]
            shape = "(" + ",".join(map(str, self.output_shapes[index])) + ")"
            rows = (
                "rows x1,y1,x2,y2,score,class (NMS included)"
                if out.layout == "yolo_end2end"
                else f"boxes cx,cy,w,h + {spec.num_classes} class scores"
            )
            lines.append(f"  output {index} {shape}: {rows}; box units from the values")
        elif out.layout != "classes":
            order = scale_order(spec, self.output_shapes)
            for stride, anchors, index in zip(out.strides, out.anchors, order, strict=True):
                pairs = " ".join(f"{w:g},{h:g}" for w, h in anchors)
                lines.append(f"  stride {stride}: output {index}, anchors {pairs}")
        lines.append(f"  thresholds conf {th.conf:g} iou {th.iou:g} max_det {th.max_det}")
        if spec.created_by:
            lines.append(f"  created by {spec.created_by}")
        return lines


def validate_model(
    path: str | Path,
    expect_spec: bool = False,
    timeout: float = 60.0,
    num_threads: int | None = None,
    ops: bool = True,
) -> ModelInfo:
    """Check that a ``.tflite`` file loads and runs, without risking this process.

    Args:
        path: the model file.
        expect_spec: require edgecnn metadata (Ultralytics metadata does not count).
        timeout: seconds the child process may take to load and run the model once.
        num_threads: interpreter threads in the child.
        ops: list the operators (:attr:`ModelInfo.ops`; the child builds a second
            interpreter for it).

    Returns:
        The model's :class:`ModelInfo`.

    Raises:
        ModelError: one line saying what is wrong (missing, not TFLite, truncated, corrupt,
            metadata invalid or not matching the tensors, interpreter error, crash, timeout).
    """
    info = start_model_check(path, expect_spec, timeout, num_threads, ops).result()
    assert info is not None  # only a stop through on_tick gives None
    return info


def start_model_check(
    path: str | Path,
    expect_spec: bool = False,
    timeout: float = 60.0,
    num_threads: int | None = None,
    ops: bool = True,
) -> ModelCheck:
    """:func:`validate_model` without waiting: stage 1 now, stage 2 started in a child process.

    The caller does other work meanwhile (the daemon opens the camera and imports the
    interpreter) and then waits with :meth:`ModelCheck.result`. Arguments as for
    :func:`validate_model`.

    Raises:
        ModelError: stage 1 failed, or the child cannot be started.
    """
    source = str(path)
    with open_model_file(path) as data:
        parsed = parse_model_file(data, source)
        spec, origin = carried_spec(data, parsed, source)
    main = parsed.main
    if len(main.inputs) != 1:
        raise ModelError(f"{source}: {len(main.inputs)} input tensors; edgecnn models have one image input")
    if origin != FROM_EDGECNN and expect_spec:
        raise ModelError(f"{source} has no edgecnn metadata")
    if spec is not None:
        outputs = [t.shape for t in main.output_tensors]
        check_spec_matches_model(spec, main.input_tensors[0].shape, outputs, source)
    partial = ModelInfo(
        path=source,
        size=parsed.size,
        backend="",
        backend_version="",
        inputs=(),
        outputs=(),
        ops=(),
        metadata_names=tuple(name for name, _ in parsed.metadata),
        spec=spec,
        spec_origin=origin,
    )
    command = probe_command(source, num_threads) + (["--ops"] if ops else [])
    return ModelCheck(partial, command, timeout)


def probe_command(path: str, num_threads: int | None = None) -> list[str]:
    """The command line of the child check."""
    command = [sys.executable, "-m", PROBE_MODULE, path]
    if num_threads is not None:
        command += ["--num-threads", str(num_threads)]
    return command


class ModelCheck:
    """Stage 2 of :func:`validate_model`, running in a child process.

    Args:
        partial: what stage 1 found (the interpreter's fields still empty).
        command: the child's command line.
        timeout: seconds the child may take, from now.

    Raises:
        ModelError: the child cannot be started.
    """

    def __init__(self, partial: ModelInfo, command: list[str], timeout: float) -> None:
        self._partial = partial
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._outcome: ModelInfo | ModelError | None = None
        env = dict(os.environ)
        # The child must import this same edgecnn, installed or not.
        package_root = str(Path(edgecnn.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                env=env,
            )
        except OSError as exc:
            raise ModelError(
                f"{partial.path}: cannot start the model check: {exc.strerror or exc}"
            ) from None

    def result(
        self, tick: float | None = None, on_tick: Callable[[], bool] | None = None
    ) -> ModelInfo | None:
        """Wait for the child and return the model's :class:`ModelInfo`.

        Args:
            tick: seconds between calls of ``on_tick`` while waiting.
            on_tick: called every ``tick`` seconds; when it returns True, the child is ended
                and None returned (the caller is stopping).

        Raises:
            ModelError: what is wrong, in one line (interpreter error, crash, timeout).
        """
        while self._outcome is None:
            remaining = self._deadline - time.monotonic()
            try:
                stdout, stderr = self._proc.communicate(
                    timeout=max(0.0, remaining if tick is None else min(tick, remaining))
                )
            except subprocess.TimeoutExpired:
                if time.monotonic() >= self._deadline:
                    self.cancel()
                    self._outcome = ModelError(
                        f"{self._partial.path}: the TFLite interpreter did not load and run it "
                        f"within {self._timeout:g} s"
                    )
                elif on_tick is not None and on_tick():
                    self.cancel()
                    return None
                continue
            try:
                self._outcome = self._info(self._proc.returncode, stdout, stderr)
            except ModelError as exc:
                self._outcome = exc
        if isinstance(self._outcome, ModelError):
            raise self._outcome
        return self._outcome

    def cancel(self) -> None:
        """End the child if it still runs (safe to call more than once)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()

    def _info(self, returncode: int, stdout: str, stderr: str) -> ModelInfo:
        source = self._partial.path
        if returncode < 0:
            raise ModelError(_crash_message(source, -returncode))
        payload = _payload(stdout)
        if payload is None:
            lines = [line.strip() for line in drop_lines(stderr, XNNPACK_NOTICE).splitlines() if line.strip()]
            detail = lines[-1] if lines else f"exit code {returncode}, no output"
            raise ModelError(f"{source}: the model check failed: {detail}")
        if "error" in payload:
            if payload.get("kind") == "edgecnn":
                raise ModelError(f"{source}: {payload['error']}")
            raise ModelError(f"{source}: the TFLite interpreter could not load it: {payload['error']}")
        return replace(
            self._partial,
            backend=payload["backend"],
            backend_version=payload["backend_version"],
            inputs=tuple(_tensor(t) for t in payload["inputs"]),
            outputs=tuple(_tensor(t) for t in payload["outputs"]),
            ops=tuple(payload["ops"]),
        )


def _tensor(fields: dict[str, Any]) -> TensorInfo:
    return TensorInfo(**{**fields, "shape": tuple(fields["shape"])})


def _crash_message(source: str, signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGKILL:
        return f"{source}: the model check was killed ({name}; out of memory?)"
    return f"{source}: the TFLite interpreter crashed loading it ({name}); the file is probably corrupt"


def _payload(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            try:
                payload = json.loads(line[len(MARKER) :])
            except json.JSONDecodeError:
                return None
            return payload if isinstance(payload, dict) else None
    return None
