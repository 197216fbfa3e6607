"""MiniGoogLeNet: the small Inception net for CIFAR (Zhang et al. 2017, Rosebrock's DL4CV).

Built from three modules: a *conv module* (conv -> BN -> ReLU), an *inception module* (a 1x1
and a 3x3 conv module side by side, concatenated) and a *downsample module* (a 3x3 stride-2
conv module next to a 3x3 stride-2 max pool, concatenated)::

    conv 96@3x3
    inception(32, 32), inception(32, 48), downsample(80)
    inception(112, 48), inception(96, 64), inception(80, 80), inception(48, 96), downsample(96)
    inception(176, 160), inception(176, 160)
    global average pool -> dropout 0.5 -> dense C

The book's 7x7 average pool is a global average pool here (the same at 32 px, and any input
size works).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import register_model

if TYPE_CHECKING:
    import keras


def _mini_googlenet(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    dropout: float = 0.5,
    name: str = "mini_googlenet",
) -> keras.Model:
    """Build a MiniGoogLeNet classifier.

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``; 32 px in the paper.
        width: multiplier of every module's filter counts.
        dropout: dropout before the logits.
        name: model name.

    Returns:
        A functional model mapping images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("mini_googlenet", num_classes=10, input_size=64).output_shape  # doctest: +SKIP
    (None, 10)
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import classifier_head, conv_bn_act, image_input, scale_filters

    def f(n: int) -> int:
        return scale_filters(n, width)

    def inception(x: keras.KerasTensor, k1: int, k3: int, name: str) -> keras.KerasTensor:
        a = conv_bn_act(x, f(k1), 1, name=f"{name}_1x1")
        b = conv_bn_act(x, f(k3), 3, name=f"{name}_3x3")
        return layers.Concatenate(name=f"{name}_concat")([a, b])

    def downsample(x: keras.KerasTensor, k: int, name: str) -> keras.KerasTensor:
        a = conv_bn_act(x, f(k), 3, strides=2, padding="valid", name=f"{name}_3x3")
        b = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
        return layers.Concatenate(name=f"{name}_concat")([a, b])

    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, f(96), 3, name="stem")
    x = inception(x, 32, 32, "inc1a")
    x = inception(x, 32, 48, "inc1b")
    x = downsample(x, 80, "down1")
    for suffix, (k1, k3) in zip("abcd", ((112, 48), (96, 64), (80, 80), (48, 96)), strict=True):
        x = inception(x, k1, k3, f"inc2{suffix}")
    x = downsample(x, 96, "down2")
    x = inception(x, 176, 160, "inc3a")
    x = inception(x, 176, 160, "inc3b")
    outputs = classifier_head(x, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


_GOOGLENET: dict[str, Any] = {
    "family": "mini_googlenet",
    "task": "classify",
    "input_size": 32,
    "reference_classes": 10,
}


@register_model(**_GOOGLENET)
def mini_googlenet(**kwargs: Any) -> keras.Model:
    """MiniGoogLeNet (Zhang et al. / Rosebrock's DL4CV), 32 px colour, CIFAR size."""
    return _mini_googlenet(**kwargs)


@register_model(**_GOOGLENET, width=0.125, test=True)
def mini_googlenet_test(**kwargs: Any) -> keras.Model:
    """MiniGoogLeNet at width 0.125, for tests."""
    return _mini_googlenet(**kwargs)
