"""The model zoo (workstation side): a registry of classifier and detector architectures.

Importing this package registers every family (``lenet``, ``alexnet_mini``, ``minivggnet``,
``mini_googlenet``, ``mini_resnet``, MobileNet V1/V2/V3, ``tiny_yolo_v2``/``v3``,
``yolo_lite``, ``mobilenet_v2_yolo``) without importing Keras; building a model does.
The board side (``edgecnn.runtime``, ``edgecnn.postprocess``) never imports this package.

Example:

>>> from edgecnn.architectures import build_model, list_models
>>> [m.name for m in list_models(task="detect")][:2]
['tiny_yolo_v2', 'tiny_yolo_v3']
>>> model = build_model("yolo_lite", num_classes=2)  # doctest: +SKIP
"""

from __future__ import annotations

from edgecnn.architectures.registry import (
    ModelInfo,
    build_model,
    get_model_info,
    list_models,
    register_model,
)
from edgecnn.architectures.stats import ModelFigures, count_macs, model_figures, model_table

# Importing a family module registers its variants.
from edgecnn.architectures import (  # noqa: F401  isort: skip
    lenet,
    alexnet,
    minivgg,
    googlenet,
    resnet,
    mobilenet,
    tiny_yolo,
    yolo_lite,
    mobilenet_yolo,
)

__all__ = [
    "ModelFigures",
    "ModelInfo",
    "build_model",
    "count_macs",
    "get_model_info",
    "list_models",
    "model_figures",
    "model_table",
    "register_model",
]
