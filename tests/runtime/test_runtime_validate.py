"""validate_model and ``edgecnn inspect``: bad files give one clear line, the parent survives."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.errors import ModelError
from edgecnn.quantize.metadata_writer import write_spec
from edgecnn.runtime import validate as validate_module
from edgecnn.runtime.flatbuffer import root_table
from edgecnn.runtime.probe import MARKER
from edgecnn.runtime.spec import InputSpec, ModelSpec
from edgecnn.runtime.validate import start_model_check, validate_model

Damage = Callable[[bytes], bytes]

# name -> (how to make the file from a good model, what the one line says)
BAD_FILES: dict[str, tuple[Damage, str]] = {
    "empty": (lambda data: b"", r"empty file \(0 bytes\)"),
    "truncated_8": (lambda data: data[:8], r"truncated or corrupt: the Model table .* \(8 bytes\)"),
    "truncated_16": (lambda data: data[:16], r"truncated or corrupt: .* end of the file \(16 bytes\)"),
    "truncated_half": (lambda data: data[: len(data) // 2], r"truncated or corrupt: .* extends past the end"),
    "truncated_minus_1": (
        lambda data: data[:-1],
        r"truncated or corrupt: operator code 0 .* extends past the end",
    ),
    "wrong_magic": (lambda data: data[:4] + b"TFL2" + data[8:], r"not a TFLite model \(no TFL3 identifier\)"),
    "random": (
        lambda data: np.random.default_rng(7).bytes(len(data)),
        r"not a TFLite model \(no TFL3 identifier\)",
    ),
    "header_only": (
        lambda data: b"\x18\x00\x00\x00TFL3",
        r"the Model table \(bytes 24\.\.28\) extends past the end",
    ),
}


@pytest.fixture
def bad_file(tiny_tflite: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        damage, _ = BAD_FILES[name]
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(damage(tiny_tflite["det_int8"].read_bytes()))
        return path

    return make


@pytest.mark.tf
def test_good_model(
    tiny_tflite: dict[str, Path], tiny_tflite_spec: dict[str, Path], det_spec: ModelSpec
) -> None:
    info = validate_model(tiny_tflite["det_int8"])
    assert info.backend == "ai_edge_litert" and info.size == tiny_tflite["det_int8"].stat().st_size
    assert (info.input_shape, info.input_dtype) == ((1, 64, 64, 3), "int8")
    assert sorted(info.output_shapes) == [(1, 4, 4, 14), (1, 8, 8, 14)]
    assert info.output_dtypes == ["int8", "int8"]
    assert info.inputs[0].scale > 0 and info.inputs[0].zero_point == -128
    assert info.ops == ("CONV_2D",) * 6
    assert info.spec is None
    info = validate_model(tiny_tflite_spec["det_int8"], expect_spec=True, num_threads=1)
    assert info.spec == det_spec
    assert info.metadata_names == ("min_runtime_version", "CONVERSION_METADATA", "edgecnn")


@pytest.mark.tf
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_in_process(bad_file: Callable[[str], Path], name: str) -> None:
    path = bad_file(name)
    with pytest.raises(ModelError, match=BAD_FILES[name][1]) as info:
        validate_model(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nope\.tflite: no such file$"):
        validate_model(tmp_path / "nope.tflite")
    with pytest.raises(ModelError, match=r": is a directory, not a \.tflite file$"):
        validate_model(tmp_path)


@pytest.mark.tf
def test_metadata_must_fit_the_tensors(
    tiny_tflite: dict[str, Path], cls_spec: ModelSpec, det_spec: ModelSpec, tmp_path: Path
) -> None:
    wrong_size = det_spec.model_copy(update={"input": InputSpec(width=96, height=96)})
    path = write_spec(tiny_tflite["det_int8"], wrong_size, tmp_path / "m.tflite")
    with pytest.raises(
        ModelError,
        match=rf"^{path}: input shape \(1,64,64,3\) does not match the edgecnn metadata: "
        r"96x96x3 \(height x width x channels\)$",
    ):
        validate_model(path)
    wrong_labels = cls_spec.model_copy(update={"labels": ["a", "b", "c", "d"]})
    path = write_spec(tiny_tflite["cls_int8"], wrong_labels, tmp_path / "c.tflite")
    with pytest.raises(ModelError, match=r"output tensors \(1,3\) do not match the edgecnn metadata"):
        validate_model(path)
    with pytest.raises(ModelError, match=r"cls_int8\.tflite has no edgecnn metadata$"):
        validate_model(tiny_tflite["cls_int8"], expect_spec=True)


@pytest.mark.tf
def test_interpreter_error_in_the_child(tiny_tflite: dict[str, Path], tmp_path: Path) -> None:
    """A file that is a well-formed flatbuffer but names an operator that does not exist."""
    data = bytearray(tiny_tflite["det_int8"].read_bytes())
    code = root_table(bytes(data)).tables(1, "operator code")[0]
    struct.pack_into("<i", data, code.field_pos(3, 4), 9999)  # OperatorCode.builtin_code
    path = tmp_path / "unknown_op.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(
        ModelError, match=r"unknown_op\.tflite: the TFLite interpreter could not load it: "
    ) as info:
        validate_model(path)
    assert "\n" not in str(info.value)


@pytest.mark.tf
def test_the_interpreters_messages_are_separated(tiny_tflite: dict[str, Path], tmp_path: Path) -> None:
    """A bias tensor marked float16: LiteRT reports two messages, which its error reporter
    glues together ("...node #4Node number 6 ..."); both paths give them separated by "; "."""
    from edgecnn.runtime.interpreter import TFLiteModel

    data = bytearray(tiny_tflite["det_int8"].read_bytes())
    tensors = root_table(bytes(data)).tables(2, "subgraph")[0].tables(0, "subgraph 0 tensor")
    bias = next(t for t in tensors if t.scalar(1, struct.Struct("<b"), 0) == 2)  # the first int32 tensor
    data[bias.field_pos(1, 1)] = 1  # TensorType FLOAT16
    path = tmp_path / "float16_bias.tflite"
    path.write_bytes(bytes(data))
    messages = []
    for load in (validate_model, TFLiteModel):
        with pytest.raises(ModelError, match=r"the TFLite interpreter could not load it: ") as info:
            load(path)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert re.search(r"\S; Node number \d+ \(\w+\) failed to prepare\.$", messages[0]), messages[0]
    assert not re.search(r"[^\s;]Node number", messages[0])


PROBE_WITH_MODULES = """
import json, runpy, sys
sys.argv = ["probe", *sys.argv[1:]]
try:
    runpy.run_module("edgecnn.runtime.probe", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.tf
def test_the_child_imports_only_the_interpreter(tiny_tflite_spec: dict[str, Path]) -> None:
    """The daemon waits for this child: it must not pay for OpenCV, pydantic or post-processing."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("EDGECNN_TFLITE_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE_WITH_MODULES, str(tiny_tflite_spec["det_int8"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    *_, result, modules = proc.stdout.splitlines()
    assert result.startswith(MARKER) and json.loads(result[len(MARKER) :])["ops"] == []  # no --ops
    loaded = json.loads(modules)
    assert "ai_edge_litert" in loaded
    unwanted = ("cv2", "pydantic", "yaml", "edgecnn.postprocess", "edgecnn.runtime.interpreter", "tensorflow")
    assert [m for m in loaded if m.startswith(unwanted)] == []


@pytest.mark.tf
def test_a_check_started_in_the_background_gives_the_same_info(tiny_tflite: dict[str, Path]) -> None:
    check = start_model_check(tiny_tflite["det_int8"], ops=False)
    info = check.result()
    assert info is not None and info.ops == ()  # ops=False: no second interpreter in the child
    assert info == replace(validate_model(tiny_tflite["det_int8"]), ops=())
    assert check.result() is info  # waiting again returns the same answer


def _fake_child(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(validate_module, "probe_command", lambda path, threads: [sys.executable, "-c", code])


@pytest.mark.tf
def test_child_crash_timeout_and_garbage(
    tiny_tflite: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated children: the real interpreter does not crash on the files above (the parent's
    checks catch them first), but a corrupt file can make one segfault."""
    path = tiny_tflite["cls_int8"]
    _fake_child(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(ModelError, match=r"crashed loading it \(SIGSEGV\); the file is probably corrupt$"):
        validate_model(path)
    _fake_child(monkeypatch, "import os; os.abort()")
    with pytest.raises(ModelError, match=r"crashed loading it \(SIGABRT\)"):
        validate_model(path)
    _fake_child(monkeypatch, "import time; time.sleep(60)")
    with pytest.raises(ModelError, match=r"did not load and run it within 1 s$"):
        validate_model(path, timeout=1)
    _fake_child(monkeypatch, "import sys; print('noise'); sys.exit('something odd happened')")
    with pytest.raises(ModelError, match=r"the model check failed: something odd happened$"):
        validate_model(path)


@pytest.mark.tf
def test_no_backend_in_the_child(tiny_tflite: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECNN_TFLITE_BACKEND", "tflite_runtime")  # not installed here
    with pytest.raises(ModelError, match=r"cls_int8\.tflite: TFLite backend tflite_runtime was requested"):
        validate_model(tiny_tflite["cls_int8"])


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("name", [*BAD_FILES, "metadata_mismatch", "missing", "directory"])
def test_bad_files_through_the_cli(
    bad_file: Callable[[str], Path],
    tiny_tflite: dict[str, Path],
    det_spec: ModelSpec,
    tmp_path: Path,
    cli,
    name: str,
) -> None:
    if name == "missing":
        path, pattern = tmp_path / "missing.tflite", "no such file$"
    elif name == "directory":
        path, pattern = tmp_path, "is a directory"
    elif name == "metadata_mismatch":
        wrong = det_spec.model_copy(update={"input": InputSpec(width=96, height=96)})
        path = write_spec(tiny_tflite["det_int8"], wrong, tmp_path / "mismatch.tflite")
        pattern = r"input shape \(1,64,64,3\) does not match the edgecnn metadata: 96x96x3"
    else:
        path, pattern = bad_file(name), BAD_FILES[name][1]
    result = cli("inspect", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"edgecnn: error: {path}: ")
    assert re.search(pattern, lines[0])
    assert result.stdout == ""


@pytest.mark.tf
def test_inspect_prints_tensors_and_spec(
    tiny_tflite: dict[str, Path], tiny_tflite_spec: dict[str, Path]
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(tiny_tflite_spec["det_int8"])], catch_exceptions=False)
    assert result.exit_code == 0
    out = result.output
    assert "backend  ai_edge_litert" in out
    assert "(1,64,64,3) int8 scale 0.00392" in out and "zero_point -128" in out
    assert "ops      CONV_2D x6" in out
    assert "task detect, 2 labels: person, car" in out
    assert "stride 8: output 1, anchors 10,14 23,27" in out and "stride 16: output 0" in out
    assert "thresholds conf 0.25 iou 0.45 max_det 300" in out

    result = runner.invoke(app, ["inspect", str(tiny_tflite["cls_float"])], catch_exceptions=False)
    assert result.exit_code == 0 and "spec     no edgecnn metadata" in result.output
    assert "not quantised" in result.output

    result = runner.invoke(
        app, ["inspect", "--json", str(tiny_tflite_spec["cls_uint8"])], catch_exceptions=False
    )
    document = json.loads(result.output)
    assert document["spec"]["labels"] == ["cat", "dog", "bird"]
    assert document["inputs"][0]["dtype"] == "uint8" and document["inputs"][0]["shape"] == [1, 32, 32, 3]
    assert document["backend"] == "ai_edge_litert" and "QUANTIZE" in document["ops"]


@pytest.mark.tf
def test_an_abandoned_check_ends_its_child(
    tiny_tflite: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A daemon stopped while the model is checked gives up waiting and leaves no child behind."""
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    _fake_child(monkeypatch, code)
    check = start_model_check(tiny_tflite["cls_int8"])  # returns while the child runs
    ticks: list[int] = []

    def stopping() -> bool:
        ticks.append(1)
        return len(ticks) >= 3 and pid_file.exists() and pid_file.read_text() != ""

    assert check.result(tick=0.05, on_tick=stopping) is None
    assert len(ticks) >= 3
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # ended and reaped
        os.kill(pid, 0)
