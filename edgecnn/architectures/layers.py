"""Shared building blocks for the model families, restricted to int8-friendly layers.

Every block is a function on functional-API tensors that names each layer it creates
(``{name}_conv``, ``{name}_bn``, ``{name}_act``) and uses only stock Keras layers that the
TFLite converter maps onto full-integer builtins: Conv2D, DepthwiseConv2D, Dense,
BatchNormalization (folded into the convolution before it), ReLU, ReLU6, LeakyReLU,
hard-swish / hard-sigmoid, max/average pooling, Concatenate, Add, Multiply and
nearest-neighbour resizing. No Lambda and no custom layers, so ``get_config`` is Keras' own
and ``.keras`` files load without ``custom_objects``.

Batch normalisation always follows its convolution directly (conv -> BN -> activation) so
that the converter folds it into the convolution's weights.
"""

from __future__ import annotations

import math
from typing import Literal

import keras
import numpy as np
from keras import layers

Activation = Literal["relu", "relu6", "leaky", "hard_swish", "linear"]

LEAKY_SLOPE = 0.1  # darknet's leaky ReLU
OBJECTNESS_PRIOR = 0.01  # initial objectness probability: bias log(0.01 / 0.99) = -4.6


def scale_filters(filters: int, width: float, min_filters: int = 4) -> int:
    """Filters of a layer at width multiplier ``width``: rounded, at least ``min_filters``.

    At ``width=1`` the published filter counts are kept exactly.

    >>> scale_filters(256, 0.25), scale_filters(20, 0.25), scale_filters(16, 0.0625)
    (64, 5, 4)
    """
    if width == 1:
        return filters
    return max(min_filters, int(filters * width + 0.5))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` without dropping more than 10 % (MobileNet rule)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def activation(kind: Activation, name: str) -> layers.Layer:
    """The activation layer ``kind``, named ``name``.

    Args:
        kind: ``relu``, ``relu6``, ``leaky`` (slope 0.1) or ``hard_swish``.
        name: layer name.
    """
    if kind == "relu":
        return layers.ReLU(name=name)
    if kind == "relu6":
        return layers.ReLU(6.0, name=name)
    if kind == "leaky":
        return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name)
    if kind == "hard_swish":
        return layers.Activation("hard_swish", name=name)
    raise ValueError(f"unknown activation {kind!r}")


def conv_bn_act(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int | tuple[int, int],
    *,
    name: str,
    strides: int = 1,
    padding: str = "same",
    act: Activation = "relu",
    batch_norm: bool = True,
) -> keras.KerasTensor:
    """Conv2D -> BatchNormalization -> activation (``{name}_conv``, ``{name}_bn``, ``{name}_act``).

    Without batch norm the convolution has a bias instead.

    Args:
        x: input tensor.
        filters: output channels.
        kernel_size: convolution window.
        name: prefix of the layer names.
        strides: convolution stride.
        padding: ``same`` or ``valid``.
        act: activation kind, see :func:`activation`; ``linear`` adds no activation layer.
        batch_norm: add BatchNormalization after the convolution.
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=not batch_norm,
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if act != "linear":
        x = activation(act, f"{name}_act")(x)
    return x


def dw_separable(
    x: keras.KerasTensor,
    filters: int,
    *,
    name: str,
    kernel_size: int = 3,
    strides: int = 1,
    act: Activation = "relu6",
) -> keras.KerasTensor:
    """Depthwise 3x3 -> BN -> act -> pointwise 1x1 -> BN -> act (``{name}_dw_*``, ``{name}_pw_*``)."""
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = activation(act, f"{name}_dw_act")(x)
    return conv_bn_act(x, filters, 1, name=f"{name}_pw", act=act)


def upsample_nearest(x: keras.KerasTensor, factor: int, *, name: str) -> keras.KerasTensor:
    """Nearest-neighbour upsampling by an integer ``factor``.

    Uses ``Resizing(interpolation="nearest")``, which converts to one int8
    RESIZE_NEAREST_NEIGHBOR op; ``UpSampling2D`` converts to a dozen reshape/tile ops with the
    same result.
    """
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise ValueError("upsample_nearest needs a static spatial shape (build with a fixed input size)")
    return layers.Resizing(h * factor, w * factor, interpolation="nearest", name=name)(x)


def classifier_head(
    x: keras.KerasTensor,
    num_classes: int,
    *,
    dropout: float = 0.0,
    pool: Literal["avg", "flatten", "none"] = "avg",
) -> keras.KerasTensor:
    """Pool -> optional Dropout -> Dense logits, the last layer named ``logits``.

    Args:
        x: feature map, or an already flat tensor with ``pool="none"``.
        num_classes: output units.
        dropout: dropout rate before the logits (0: no Dropout layer).
        pool: ``avg`` (global average, ``head_pool``), ``flatten`` (``head_flatten``) or ``none``.

    The head ends with raw logits (``OutputSpec.class_activation = "softmax"``): training
    uses ``from_logits=True`` and the device applies the softmax.
    """
    if pool == "avg":
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    elif pool == "flatten":
        x = layers.Flatten(name="head_flatten")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


def yolo_output(
    x: keras.KerasTensor,
    *,
    num_anchors: int,
    num_classes: int,
    layout: Literal["yolo_v2", "yolo_v3"],
    stride: int,
    objectness_prior: float = OBJECTNESS_PRIOR,
) -> keras.KerasTensor:
    """The linear 1x1 output convolution of one detection scale, named ``output_s{stride}``.

    Channels follow the spec: per anchor ``tx, ty, tw, th, objectness, classes...``. Biases
    start at a low objectness prior (``log(p / (1 - p))``, -4.6 for p = 0.01, as in
    focal-loss / YOLOv5 practice) so that the many empty cells do not swamp the first steps;
    class biases start at 0 for a softmax head (uniform) and at YOLOv5's
    ``log(0.6 / (C - 0.99))`` for a sigmoid head; box offsets at 0.
    """
    conv = layers.Conv2D(num_anchors * (5 + num_classes), 1, padding="same", name=f"output_s{stride}")
    y = conv(x)
    conv.bias.assign(yolo_bias(num_anchors, num_classes, layout, objectness_prior))
    return y


def yolo_bias(
    num_anchors: int,
    num_classes: int,
    layout: Literal["yolo_v2", "yolo_v3"],
    objectness_prior: float = OBJECTNESS_PRIOR,
) -> np.ndarray:
    """Initial bias vector of a YOLO output convolution (see :func:`yolo_output`)."""
    bias = np.zeros((num_anchors, 5 + num_classes), dtype="float32")
    bias[:, 4] = math.log(objectness_prior / (1.0 - objectness_prior))
    if layout == "yolo_v3":
        bias[:, 5:] = math.log(0.6 / (num_classes - 0.99))
    return bias.reshape(-1)


def image_input(input_shape: tuple[int, int, int]) -> keras.KerasTensor:
    """The model input, named ``image`` (TFLite signatures need a Python identifier)."""
    return keras.Input(shape=input_shape, name="image")
