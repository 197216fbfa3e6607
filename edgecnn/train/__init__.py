"""Training (workstation side): target assignment, losses, schedule, the training loop.

* :mod:`~edgecnn.train.targets`: YOLO target assignment in numpy (the pipeline's ``target_fn``);
* :mod:`~edgecnn.train.losses`: the detection and classification losses (TensorFlow);
* :mod:`~edgecnn.train.schedule`: warm-up + cosine learning rate, AdamW / SGD;
* :mod:`~edgecnn.train.fit`: :func:`train` (``edgecnn train``), checkpoints and resume;
* :mod:`~edgecnn.train.anchors`: anchors by k-means on the training boxes.

Example:

>>> from edgecnn.train import TrainConfig, train
>>> result = train(TrainConfig(data="data.yaml", epochs=30, out="runs/a"))  # doctest: +SKIP
>>> result.metrics["map50"]  # doctest: +SKIP

Names are imported on first use (PEP 562): ``edgecnn.train.anchors`` and
``edgecnn.train.targets`` do not import TensorFlow.
"""

from __future__ import annotations

from edgecnn._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "edgecnn.train.config",
    "LossConfig": "edgecnn.train.config",
    "TrainResult": "edgecnn.train.fit",
    "TrainingInterrupted": "edgecnn.train.fit",
    "train": "edgecnn.train.fit",
    "YoloLoss": "edgecnn.train.losses",
    "classification_loss": "edgecnn.train.losses",
    "YoloTargetFn": "edgecnn.train.targets",
    "build_targets": "edgecnn.train.targets",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
