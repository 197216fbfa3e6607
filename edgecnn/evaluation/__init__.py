"""Evaluate a trained model (Keras or TFLite) on a dataset split, the way the board runs it.

Images go through :func:`edgecnn.data.pipeline.iter_preprocessed` (the board's own
preprocessing), a backend-agnostic :class:`Predictor` returns the raw outputs, and
post-processing is the board's (:func:`edgecnn.postprocess.decode_yolo` and
:func:`~edgecnn.postprocess.filter_detections`). Detections are written as a COCO results
list and scored exactly as ``edgecnn eval --predictions`` scores a file, so the two modes
agree to the last digit.

* :class:`KerasPredictor` (``.keras``, imports TensorFlow),
* :class:`TFLitePredictor` (``.tflite``, board side: its module never imports TensorFlow),
* :func:`load_predictor` picks one by file suffix,
* :func:`evaluate_model` / :func:`evaluate` run and score; :mod:`.plots` draws PR curves and
  confusion matrices.

Names are imported on first use (PEP 562), so importing this package stays light.
"""

from __future__ import annotations

from edgecnn._lazy import lazy_exports

_EXPORTS = {
    "Predictor": "edgecnn.evaluation.predictor",
    "load_predictor": "edgecnn.evaluation.predictor",
    "spec_for_model": "edgecnn.evaluation.predictor",
    "KerasPredictor": "edgecnn.evaluation.keras_predictor",
    "TFLitePredictor": "edgecnn.evaluation.tflite_predictor",
    "Evaluation": "edgecnn.evaluation.evaluator",
    "evaluate": "edgecnn.evaluation.evaluator",
    "evaluate_model": "edgecnn.evaluation.evaluator",
    "predict_results": "edgecnn.evaluation.evaluator",
    "score_results": "edgecnn.evaluation.evaluator",
    "write_plots": "edgecnn.evaluation.plots",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
