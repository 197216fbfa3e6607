"""Evaluation metrics in pure numpy: classification (accuracy, precision, recall, F1,
confusion matrix) and detection (COCO box AP, equal to pycocotools). Definitions are in
each module's docstring and in ``docs/metrics.md``.
"""

from edgecnn.metrics.classification import (
    BinaryMetrics,
    ClassificationMetrics,
    binary_metrics,
    classification_metrics,
    confusion_matrix,
)
from edgecnn.metrics.detection import (
    DetectionMetrics,
    GroundTruth,
    Predictions,
    evaluate_detections,
    predictions_from_coco_results,
)

__all__ = [
    "BinaryMetrics",
    "ClassificationMetrics",
    "DetectionMetrics",
    "GroundTruth",
    "Predictions",
    "binary_metrics",
    "classification_metrics",
    "confusion_matrix",
    "evaluate_detections",
    "predictions_from_coco_results",
]
