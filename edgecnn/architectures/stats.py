"""Size and cost of the registered models: parameter counts and multiply-accumulates (MACs).

MACs are counted by walking the model: for every Conv2D, DepthwiseConv2D and Dense layer,
``output positions x kernel size`` (Conv2D: ``H_out * W_out * k_h * k_w * C_in/groups *
C_out``; DepthwiseConv2D: ``H_out * W_out * k_h * k_w * C_in * depth_multiplier``; Dense:
``positions * C_in * units``) at batch size 1. Bias additions, batch norm (folded into the
convolution when converted), activations, pooling, element-wise adds and multiplies and
resizing are not counted. This is the convention of the MobileNet papers (300 M for
MobileNetV2 1.0 at 224 px) and half of darknet's "BFLOPs". Parameters are
``model.count_params()``: all weights including batch-norm moving statistics.

Building every model to measure it takes about a second per MobileNet, so ``edgecnn models``
reads :data:`FIGURES`, a table of the figures of every registered variant at its default
input size and reference class count; ``tests/architectures/test_arch_registry.py`` rebuilds
every variant and checks it against the table. A variant missing from the table is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import Task, get_model_info, list_models

if TYPE_CHECKING:
    import keras

# name -> (parameters, MACs) at the default input size and ``reference_classes``.
FIGURES: dict[str, tuple[int, int]] = {
    "lenet": (1256080, 6522000),
    "lenet_test": (82778, 497375),
    "alexnet_mini": (8985002, 368093184),
    "alexnet_mini_test": (143806, 6558976),
    "minivggnet": (2170474, 26579968),
    "minivggnet_test": (137314, 1828096),
    "mini_googlenet": (1654538, 234597920),
    "mini_googlenet_test": (27262, 3956264),
    "mini_resnet": (319850, 48859648),
    "mini_resnet_test": (9746, 1548928),
    "mobilenet_v1_025": (475544, 41030272),
    "mobilenet_v1_050": (1342536, 149497088),
    "mobilenet_v1_075": (2601976, 325400448),
    "mobilenet_v1_100": (4253864, 568740352),
    "mobilenet_v1_test": (475544, 3584512),
    "mobilenet_v2_035": (1691208, 59285808),
    "mobilenet_v2_050": (1987224, 97131840),
    "mobilenet_v2_075": (2663064, 209069792),
    "mobilenet_v2_100": (3538984, 300774272),
    "mobilenet_v2_test": (1691208, 6015168),
    "mobilenet_v3_small_050": (1599720, 24188688),
    "mobilenet_v3_small_075": (2051552, 43399344),
    "mobilenet_v3_small_100": (2554968, 56510400),
    "mobilenet_v3_small_minimal_100": (2056848, 52288448),
    "mobilenet_v3_small_test": (1273928, 2342144),
    "mobilenet_v3_large_075": (4012616, 154560624),
    "mobilenet_v3_large_100": (5507432, 216589760),
    "mobilenet_v3_large_minimal_100": (3948688, 209136704),
    "mobilenet_v3_large_test": (1843824, 4510464),
    "tiny_yolo_v2": (11237145, 2703221248),
    "tiny_yolo_v2_test": (57989, 883840),
    "tiny_yolo_v3": (8858734, 2782480896),
    "tiny_yolo_v3_test": (47658, 931968),
    "yolo_lite": (572317, 240004352),
    "yolo_lite_test": (42085, 1580288),
    "mobilenet_v2_yolo_035": (636602, 75596808),
    "mobilenet_v2_yolo_050": (1063054, 124991552),
    "mobilenet_v2_yolo_075": (1981566, 259627872),
    "mobilenet_v2_yolo_100": (3143166, 379449728),
    "mobilenet_v2_yolo_test": (636602, 6171168),
}


@dataclass(frozen=True)
class ModelFigures:
    """One row of ``edgecnn models``: a variant's size and cost at a given input size."""

    name: str
    family: str
    task: str
    input_size: tuple[int, int]
    channels: int
    num_classes: int
    params: int
    macs: int
    layout: str
    strides: tuple[int, ...]
    anchors_per_scale: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["strides"] = list(self.strides)
        return data


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (see the module docstring).

    Raises:
        ValueError: the model has a layer with weights other than those above and batch norm
            (a separable or transposed convolution, ...), rather than silently leaving it out.
    """
    from keras import layers

    total = 0
    for layer in _walk(model):
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            positions = math.prod(int(d) for d in layer.output.shape[1:-1])
            total += positions * math.prod(int(d) for d in layer.kernel.shape)
        elif layer.weights and not isinstance(layer, layers.BatchNormalization):
            raise ValueError(f"count_macs does not know layer {layer.name!r} ({type(layer).__name__})")
    return total


def _walk(model: keras.Model) -> list[Any]:
    import keras

    found: list[Any] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_walk(layer))
        else:
            found.append(layer)
    return found


def measure(
    name: str, num_classes: int | None = None, input_size: int | Sequence[int] | None = None
) -> ModelFigures:
    """Build ``name`` and count its parameters and MACs (slow: builds the model).

    Args:
        name: registry name.
        num_classes: classes; None uses the variant's ``reference_classes``.
        input_size: an int or ``(height, width)``; None uses the default.
    """
    import keras

    info = get_model_info(name)
    classes = num_classes or info.reference_classes
    size = info.resolve_input_size(input_size)
    model = info.build(classes, input_size=size)
    figures = _figures(info.name, classes, size, model.count_params(), count_macs(model))
    del model
    keras.backend.clear_session()
    return figures


def model_figures(
    name: str, num_classes: int | None = None, input_size: int | Sequence[int] | None = None
) -> ModelFigures:
    """Figures of ``name``: from :data:`FIGURES` at the defaults, else measured by building it."""
    info = get_model_info(name)
    if num_classes in (None, info.reference_classes) and input_size in (None, info.input_size):
        cached = FIGURES.get(name)
        if cached is not None:
            return _figures(name, info.reference_classes, info.input_size, *cached)
    return measure(name, num_classes, input_size)


def model_table(task: Task | None = None, include_test: bool = False) -> list[ModelFigures]:
    """Figures of every registered variant (the rows of ``edgecnn models``)."""
    return [model_figures(info.name) for info in list_models(task=task, include_test=include_test)]


def _figures(name: str, num_classes: int, size: tuple[int, int], params: int, macs: int) -> ModelFigures:
    info = get_model_info(name)
    return ModelFigures(
        name=name,
        family=info.family,
        task=info.task,
        input_size=tuple(size),
        channels=info.channels,
        num_classes=num_classes,
        params=int(params),
        macs=int(macs),
        layout=info.layout,
        strides=info.strides,
        anchors_per_scale=info.num_anchors,
    )
