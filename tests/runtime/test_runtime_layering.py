"""The board side never imports TensorFlow: checked in a fresh interpreter process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IMPORT_ALL = """
import importlib, json, pkgutil, sys
import edgecnn.runtime, edgecnn.postprocess
names = []
for package in (edgecnn.runtime, edgecnn.postprocess):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
        names.append(module.name)
for name in edgecnn.runtime.__all__:  # the lazy exports too
    getattr(edgecnn.runtime, name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""

RUN_MODEL = """
import json, sys
import numpy as np
from edgecnn.runtime import TFLiteModel, read_spec, validate_model
model = TFLiteModel(sys.argv[1])
outputs, _ = model.run_frame(np.zeros((48, 64, 3), np.uint8))
assert read_spec(sys.argv[1]) is not None and validate_model(sys.argv[1]).spec is not None
print(json.dumps({"backend": model.backend, "loaded": sorted(sys.modules)}))
"""


def _python(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EDGECNN_TFLITE_BACKEND", None)
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def _heavy(loaded: list[str]) -> list[str]:
    return [name for name in loaded if name.split(".")[0] in ("tensorflow", "keras", "tflite_runtime")]


def test_importing_the_board_side_loads_no_tensorflow() -> None:
    result = _python(IMPORT_ALL)
    expected = {
        "edgecnn.runtime.flatbuffer",
        "edgecnn.runtime.validate",
        "edgecnn.runtime.probe",
        "edgecnn.postprocess.letterbox",
    }
    assert expected <= set(result["imported"])
    assert _heavy(result["loaded"]) == []
    # Not even an interpreter or the flatbuffers package: metadata reading is pure Python.
    assert not [name for name in result["loaded"] if name.split(".")[0] in ("ai_edge_litert", "flatbuffers")]


@pytest.mark.tf
def test_running_a_model_loads_no_tensorflow(tiny_tflite_spec: dict[str, Path]) -> None:
    result = _python(RUN_MODEL, str(tiny_tflite_spec["det_int8"]))
    assert result["backend"] == "ai_edge_litert"
    assert _heavy(result["loaded"]) == []
