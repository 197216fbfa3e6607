"""MiniResNet: a CIFAR-size ResNet of bottleneck residual modules (after Rosebrock's DL4CV).

A 3x3 stem, then stages of bottleneck modules (1x1 -> 3x3 -> 1x1 with a quarter of the
output filters inside), the first module of each stage projecting the shortcut with a 1x1
convolution (stride 2 from the second stage on), then global average pool and logits.

Deviation from the book, which uses pre-activation modules (BN -> ReLU -> conv): modules here
are post-activation (conv -> BN -> ReLU, the original ResNet v1 bottleneck) so that every batch
norm folds into its convolution in the int8 model. Default: stages (3, 3, 3) with 64, 128,
256 output filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import register_model

if TYPE_CHECKING:
    import keras


def _mini_resnet(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    stages: Sequence[int] = (3, 3, 3),
    filters: Sequence[int] = (64, 128, 256),
    stem_filters: int = 32,
    dropout: float = 0.0,
    name: str = "mini_resnet",
) -> keras.Model:
    """Build a bottleneck ResNet classifier.

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``; 32 px by default.
        width: multiplier of all filter counts.
        stages: modules per stage.
        filters: output filters of each stage (bottlenecks use a quarter of them).
        stem_filters: filters of the 3x3 stem convolution.
        dropout: dropout before the logits.
        name: model name.

    Returns:
        A functional model mapping images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> deeper = build_model("mini_resnet", num_classes=10, stages=(9, 9, 9))  # doctest: +SKIP
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import classifier_head, conv_bn_act, image_input, scale_filters

    if len(stages) != len(filters):
        raise ValueError("stages and filters need the same length")

    def bottleneck(x: keras.KerasTensor, k: int, stride: int, project: bool, name: str) -> keras.KerasTensor:
        shortcut = x
        if project:
            shortcut = conv_bn_act(x, k, 1, strides=stride, act="linear", name=f"{name}_proj")
        y = conv_bn_act(x, max(1, k // 4), 1, name=f"{name}_a")
        y = conv_bn_act(y, max(1, k // 4), 3, strides=stride, name=f"{name}_b")
        y = conv_bn_act(y, k, 1, act="linear", name=f"{name}_c")
        y = layers.Add(name=f"{name}_add")([shortcut, y])
        return layers.ReLU(name=f"{name}_out")(y)

    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, scale_filters(stem_filters, width), 3, name="stem")
    for s, (count, k) in enumerate(zip(stages, filters, strict=True), start=1):
        for b in range(1, count + 1):
            stride = 2 if (b == 1 and s > 1) else 1
            x = bottleneck(x, scale_filters(k, width), stride, project=b == 1, name=f"stage{s}_block{b}")
    outputs = classifier_head(x, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


_RESNET: dict[str, Any] = {
    "family": "mini_resnet",
    "task": "classify",
    "input_size": 32,
    "reference_classes": 10,
}


@register_model(**_RESNET)
def mini_resnet(**kwargs: Any) -> keras.Model:
    """Bottleneck ResNet, stages (3, 3, 3), 32 px colour, CIFAR size."""
    return _mini_resnet(**kwargs)


@register_model(**_RESNET, width=0.25, test=True)
def mini_resnet_test(**kwargs: Any) -> keras.Model:
    """Bottleneck ResNet at width 0.25 with one module per stage, for tests."""
    return _mini_resnet(**{"stages": (1, 1, 1), **kwargs})
