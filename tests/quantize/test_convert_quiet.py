"""The TFLite converter's C++ notices stay out of stderr; its errors do not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgecnn._stderr import drop_lines
from edgecnn.quantize.convert import CONVERTER_NOTICE

pytestmark = pytest.mark.tf

CONVERT_IN_CHILD = """
import numpy as np, keras
from edgecnn.quantize.convert import convert_keras
inputs = keras.Input((8, 8, 3))
model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
def representative():
    for _ in range(4):
        yield [np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)]
data = convert_keras(model, "int8", "int8", representative)
print(len(data))
"""


@pytest.mark.slow
def test_int8_conversion_prints_nothing_of_the_converters() -> None:
    cmd = [sys.executable, "-c", CONVERT_IN_CHILD]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) > 0
    # TensorFlow 2.21 prints "fully_quantize: 0, inference_type: 6, ..." on every int8 conversion.
    assert "fully_quantize" not in proc.stderr and "inference_type" not in proc.stderr, proc.stderr


def test_the_notice_filter_keeps_errors() -> None:
    text = (
        "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\n"
        "W0000 00:00:1764500000.000000   123 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n"
        "E0000 00:00:1764500000.000000   123 flatbuffer_export.cc:42] op FOO has no int8 kernel\n"
        "error: 'tfl.custom' op is neither a custom op nor a flex op\n"
    )
    assert drop_lines(text, CONVERTER_NOTICE) == (
        "E0000 00:00:1764500000.000000   123 flatbuffer_export.cc:42] op FOO has no int8 kernel\n"
        "error: 'tfl.custom' op is neither a custom op nor a flex op\n"
    )
