"""Board-side runtime: run a ``.tflite`` model in LiteRT (or a fallback interpreter), turn
camera frames into its input tensor, read the spec embedded in the file, and validate model
files without risking the calling process.

Never imports TensorFlow, except as the last-resort interpreter backend. The public names
below are imported on first use (PEP 562), so that ``import edgecnn.runtime.spec`` and the
child-process probe stay light.
"""

from __future__ import annotations

from edgecnn._lazy import lazy_exports

_EXPORTS = {
    "Backend": "edgecnn.runtime.backend",
    "load_backend": "edgecnn.runtime.backend",
    "TFLiteModel": "edgecnn.runtime.interpreter",
    "TensorInfo": "edgecnn.runtime.tensors",
    "read_spec": "edgecnn.runtime.metadata",
    "read_model_spec": "edgecnn.runtime.metadata",
    "preprocess": "edgecnn.runtime.preprocessing",
    "preprocess_quantized": "edgecnn.runtime.preprocessing",
    "resolve_spec": "edgecnn.runtime.resolve",
    "resolve_file_spec": "edgecnn.runtime.resolve",
    "InputSpec": "edgecnn.runtime.spec",
    "ModelSpec": "edgecnn.runtime.spec",
    "OutputSpec": "edgecnn.runtime.spec",
    "ThresholdSpec": "edgecnn.runtime.spec",
    "ModelInfo": "edgecnn.runtime.validate",
    "validate_model": "edgecnn.runtime.validate",
    "start_model_check": "edgecnn.runtime.validate",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
