"""Workstation side: calibration sets, Keras-to-TFLite conversion (int8 and others), the
float-vs-quantised report and the layer-error debugger.

* :mod:`~edgecnn.quantize.calibration`: ``edgecnn calib build``, manifest checks, the
  representative dataset (preprocessed exactly as on the board);
* :mod:`~edgecnn.quantize.convert`: the converter recipe, the no-float-ops check, spec
  embedding and the child-process check of the result;
* :mod:`~edgecnn.quantize.report`: metrics, agreement, output error, size and latency of
  float vs quantised, and the ``--max-drop`` gate;
* :mod:`~edgecnn.quantize.debugger`: worst layers by RMSE / scale (``QuantizationDebugger``);
* :mod:`~edgecnn.quantize.workflow`: ``edgecnn quantize`` end to end;
* :mod:`~edgecnn.quantize.metadata_writer`: embeds the model spec in a ``.tflite``.

TensorFlow is imported only when converting. The public names below are imported on first
use (PEP 562), so ``import edgecnn.quantize.metadata_writer`` stays light.
"""

from __future__ import annotations

from edgecnn._lazy import lazy_exports

_EXPORTS = {
    "CalibrationRecord": "edgecnn.quantize.calibration",
    "CalibrationSet": "edgecnn.quantize.calibration",
    "check_calibration_fits": "edgecnn.quantize.calibration",
    "build_calibration_set": "edgecnn.quantize.calibration",
    "load_calibration_set": "edgecnn.quantize.calibration",
    "representative_dataset": "edgecnn.quantize.calibration",
    "QuantizeResult": "edgecnn.quantize.convert",
    "convert_keras": "edgecnn.quantize.convert",
    "float_ops": "edgecnn.quantize.convert",
    "quantize_model": "edgecnn.quantize.convert",
    "LayerError": "edgecnn.quantize.debugger",
    "layer_errors": "edgecnn.quantize.debugger",
    "QualityGateError": "edgecnn.quantize.report",
    "check_gate": "edgecnn.quantize.report",
    "compare_models": "edgecnn.quantize.report",
    "write_report": "edgecnn.quantize.report",
    "QuantizeOutcome": "edgecnn.quantize.workflow",
    "run_quantize": "edgecnn.quantize.workflow",
    "embed_spec": "edgecnn.quantize.metadata_writer",
    "write_spec": "edgecnn.quantize.metadata_writer",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
