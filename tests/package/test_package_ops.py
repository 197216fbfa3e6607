"""The operator check: the table is what the runtimes really resolve, and bad models are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tinymodels

from edgecnn.package._optable import BUILTIN_NAMES, OP_VERSIONS
from edgecnn.package.ops import UnsupportedOpError, check_model_ops, model_ops
from edgecnn.package.opsprobe import one_op_model, probe_runtime
from edgecnn.package.wheelhouse import PROFILES

LITERT = ("ai-edge-litert", PROFILES["ai-edge-litert"].version)
TFLRT = ("tflite-runtime", PROFILES["tflite-runtime"].version)


def test_table_covers_every_pinned_runtime() -> None:
    for release in PROFILES.values():
        assert (release.name, release.version) in OP_VERSIONS
    # Sanity of the measured content: the ops of every detector here, at their usual versions.
    for key in (LITERT, TFLRT):
        table = OP_VERSIONS[key]
        for name in ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR"):
            code = next(c for c, n in BUILTIN_NAMES.items() if n == name)
            assert table[code][0] == 1 and table[code][1] >= 3
        assert 32 not in table  # CUSTOM is never a builtin
    # tflite-runtime 2.14 is older: strictly fewer ops, and lower versions of some.
    assert set(OP_VERSIONS[TFLRT]) < set(OP_VERSIONS[LITERT])


def test_one_op_models_read_back(tmp_path: Path) -> None:
    """The probe's one-operator models hold exactly the code and version asked for."""
    for code, version in ((3, 1), (3, 8), (130, 2), (205, 1), (250, 7)):
        path = tmp_path / f"{code}_{version}.tflite"
        path.write_bytes(one_op_model(code, version))
        [op] = model_ops(path)
        assert (op.builtin_code, op.version, op.custom_code, op.count) == (code, version, None, 1)


@pytest.mark.slow
def test_table_matches_installed_ai_edge_litert() -> None:
    """Re-measure the installed LiteRT: the table is its real op resolution, not a guess."""
    pytest.importorskip("ai_edge_litert")
    measured = probe_runtime("ai-edge-litert")
    key = ("ai-edge-litert", measured["version"])
    assert key in OP_VERSIONS, f"no table for {key}: python -m edgecnn.package.opsprobe --update"
    assert measured["versions"] == OP_VERSIONS[key]


@pytest.mark.slow
def test_table_matches_tflite_runtime(tmp_path: Path) -> None:
    """The same for tflite-runtime 2.14, installed from PyPI into a throw-away venv."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, f"tflite-runtime=={TFLRT[1]}", "numpy<2"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = probe_runtime("tflite-runtime", str(venv / "bin/python"))
    assert measured["version"] == TFLRT[1]
    assert measured["versions"] == OP_VERSIONS[TFLRT]


@pytest.mark.tf
@pytest.mark.slow
def test_detector_ops_pass_both_runtimes(tiny_detector: Path) -> None:
    ops = model_ops(tiny_detector)
    # ReLU6 is fused into the conv; int8 in and out: no QUANTIZE / DEQUANTIZE.
    assert [(op.name, op.count) for op in ops] == [("AVERAGE_POOL_2D", 1), ("CONV_2D", 3), ("MAX_POOL_2D", 1)]
    assert ops[1].version >= 3
    for key in (LITERT, TFLRT):
        assert check_model_ops(tiny_detector, *key) == ops


@pytest.mark.tf
@pytest.mark.slow
def test_select_tf_ops_model_is_refused_naming_the_op(flex_model: Path) -> None:
    ops = {op.name: op for op in model_ops(flex_model)}
    assert ops["FlexAdjustHue"].is_custom
    expected = r"FlexAdjustHue is a custom operator \(a TF Select op"
    with pytest.raises(UnsupportedOpError, match=expected) as err:
        check_model_ops(flex_model, *LITERT)
    assert [op.name for op in err.value.ops] == ["FlexAdjustHue"]


@pytest.mark.tf
@pytest.mark.slow
def test_unknown_builtin_code_is_refused(tiny_detector: Path, tmp_path: Path) -> None:
    patched = tinymodels.patch_operator_code(tiny_detector, tmp_path / "m.tflite", 3, new_code=250)
    with pytest.raises(UnsupportedOpError, match="builtin code 250 is unknown"):
        check_model_ops(patched, *LITERT)


@pytest.mark.tf
@pytest.mark.slow
def test_operator_version_newer_than_the_runtime_is_refused(tiny_detector: Path, tmp_path: Path) -> None:
    """CONV_2D version 8: LiteRT 2.3 has it, tflite-runtime 2.14 stops at 7."""
    patched = tinymodels.patch_operator_code(tiny_detector, tmp_path / "m.tflite", 3, new_version=8)
    conv = next(op for op in check_model_ops(patched, *LITERT) if op.name == "CONV_2D")
    assert conv.version == 8
    expected = r"CONV_2D version 8 is not available \(it has versions 1-7\)"
    with pytest.raises(UnsupportedOpError, match=expected):
        check_model_ops(patched, *TFLRT)


def test_runtime_without_table_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(one_op_model(3, 1))
    with pytest.raises(Exception, match=r"no operator table for ai-edge-litert 9\.9\.9") as err:
        check_model_ops(path, "ai-edge-litert", "9.9.9")
    assert err.value.exit_code == 2
