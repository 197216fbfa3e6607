"""MobileNet V1, V2 and V3 classifiers.

V1 and V2 are ``keras.applications.MobileNet`` / ``MobileNetV2`` (``weights=None``,
``include_top=False``, every layer named by Keras) with our head: global average pool ->
dropout -> dense logits, which has the same weights as the Keras top. Inputs are RGB mapped to
[-1, 1] (``(x - 127.5) / 127.5``) as the Keras models expect; any size from 32 px works
without pretrained weights.

V3 is built here rather than taken from ``keras.applications.MobileNetV3*``: the Keras version
creates unnamed activation layers and raw ``x + 3`` / ``x * (1/6)`` ops for its hard-sigmoid,
whose names depend on the session. This one has the same blocks, filter counts and head
(``conv_2``: 1024 or 1280 units with bias after pooling, then the logits) and names
every layer, using ``Activation("hard_swish")`` / ``Activation("hard_sigmoid")``, which
convert to int8 HARD_SWISH and RELU6 + MUL. Normalisation is in the spec, not in the model
(like ``include_preprocessing=False``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from edgecnn.architectures.registry import MOBILENET_NORM, register_model

if TYPE_CHECKING:
    import keras


def _mobilenet_v1(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    dropout: float = 1e-3,
    name: str = "mobilenet_v1",
) -> keras.Model:
    """Build a MobileNet V1 classifier (``keras.applications.MobileNet`` body).

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``, at least 32 px.
        width: the width multiplier ``alpha`` (0.25, 0.5, 0.75, 1.0 published).
        dropout: dropout before the logits (Keras default 1e-3).
        name: model name.

    Returns:
        A functional model mapping [-1, 1] images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("mobilenet_v1_025", num_classes=2, input_size=128).output_shape  # doctest: +SKIP
    (None, 2)
    """
    import keras

    from edgecnn.architectures.layers import classifier_head, image_input

    inputs = image_input(input_shape)
    body = keras.applications.MobileNet(input_tensor=inputs, alpha=width, include_top=False, weights=None)
    outputs = classifier_head(body.output, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


def _mobilenet_v2(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    dropout: float = 0.0,
    name: str = "mobilenet_v2",
) -> keras.Model:
    """Build a MobileNet V2 classifier (``keras.applications.MobileNetV2`` body).

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``, at least 32 px.
        width: the width multiplier ``alpha`` (0.35, 0.5, 0.75, 1.0 published); the last
            1x1 convolution keeps 1280 filters below 1.0, as in the paper.
        dropout: dropout before the logits (the Keras top has none).
        name: model name.

    Returns:
        A functional model mapping [-1, 1] images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("mobilenet_v2_100", num_classes=1000).count_params()  # doctest: +SKIP
    3538984
    """
    import keras

    from edgecnn.architectures.layers import classifier_head, image_input

    inputs = image_input(input_shape)
    body = keras.applications.MobileNetV2(input_tensor=inputs, alpha=width, include_top=False, weights=None)
    outputs = classifier_head(body.output, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


# (expansion, filters, kernel, stride, squeeze-excite, activation) per inverted residual block;
# kernel 0 and activation "hs" mean "5 and hard-swish, or 3 and ReLU when minimalistic".
_V3_BLOCKS = {
    "small": (
        (1, 16, 3, 2, True, "relu"),
        (72 / 16, 24, 3, 2, False, "relu"),
        (88 / 24, 24, 3, 1, False, "relu"),
        (4, 40, 0, 2, True, "hs"),
        (6, 40, 0, 1, True, "hs"),
        (6, 40, 0, 1, True, "hs"),
        (3, 48, 0, 1, True, "hs"),
        (3, 48, 0, 1, True, "hs"),
        (6, 96, 0, 2, True, "hs"),
        (6, 96, 0, 1, True, "hs"),
        (6, 96, 0, 1, True, "hs"),
    ),
    "large": (
        (1, 16, 3, 1, False, "relu"),
        (4, 24, 3, 2, False, "relu"),
        (3, 24, 3, 1, False, "relu"),
        (3, 40, 0, 2, True, "relu"),
        (3, 40, 0, 1, True, "relu"),
        (3, 40, 0, 1, True, "relu"),
        (6, 80, 3, 2, False, "hs"),
        (2.5, 80, 3, 1, False, "hs"),
        (2.3, 80, 3, 1, False, "hs"),
        (2.3, 80, 3, 1, False, "hs"),
        (6, 112, 3, 1, True, "hs"),
        (6, 112, 3, 1, True, "hs"),
        (6, 160, 0, 2, True, "hs"),
        (6, 160, 0, 1, True, "hs"),
        (6, 160, 0, 1, True, "hs"),
    ),
}
_V3_LAST_POINT = {"small": 1024, "large": 1280}


def _mobilenet_v3(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    size: Literal["small", "large"],
    width: float = 1.0,
    minimalistic: bool = False,
    dropout: float = 0.2,
    name: str = "mobilenet_v3",
) -> keras.Model:
    """Build a MobileNet V3 classifier (the ``keras.applications`` V3 layout, every layer named).

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``, at least 32 px.
        size: ``small`` or ``large``.
        width: the width multiplier ``alpha`` (0.75 and 1.0 published; any value builds).
        minimalistic: no squeeze-excite, no hard-swish, 3x3 kernels only (faster on CPUs and
            easier to quantise).
        dropout: dropout before the logits (Keras default 0.2).
        name: model name.

    Returns:
        A functional model mapping [-1, 1] images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("mobilenet_v3_small_100", num_classes=1000).count_params()  # doctest: +SKIP
    2554968
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import activation, image_input, make_divisible

    def act(kind: str, layer_name: str) -> layers.Layer:
        if kind == "hs" and not minimalistic:
            return activation("hard_swish", layer_name)
        return activation("relu", layer_name)

    def conv_bn(
        x: keras.KerasTensor, filters: int, kernel: int, stride: int, prefix: str
    ) -> keras.KerasTensor:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=prefix)(x)
        return layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{prefix}_bn")(x)

    def squeeze_excite(x: keras.KerasTensor, filters: int, prefix: str) -> keras.KerasTensor:
        s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(x)
        s = layers.Conv2D(make_divisible(filters * 0.25), 1, name=f"{prefix}squeeze_excite_conv")(s)
        s = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(s)
        s = layers.Conv2D(filters, 1, name=f"{prefix}squeeze_excite_conv_1")(s)
        s = layers.Activation("hard_sigmoid", name=f"{prefix}squeeze_excite_hard_sigmoid")(s)
        return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([x, s])

    inputs = image_input(input_shape)
    x = conv_bn(inputs, 16, 3, 2, "conv")
    x = act("hs", "conv_act")(x)
    for block_id, (expansion, filters, kernel, stride, se, kind) in enumerate(_V3_BLOCKS[size]):
        kernel = kernel or (3 if minimalistic else 5)
        out_filters = make_divisible(filters * width)
        shortcut, in_filters = x, x.shape[-1]
        prefix = f"expanded_conv_{block_id}_" if block_id else "expanded_conv_"
        if block_id:
            x = conv_bn(x, make_divisible(in_filters * expansion), 1, 1, f"{prefix}expand")
            x = act(kind, f"{prefix}expand_act")(x)
        x = layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}depthwise"
        )(x)
        x = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{prefix}depthwise_bn")(x)
        x = act(kind, f"{prefix}depthwise_act")(x)
        if se and not minimalistic:
            x = squeeze_excite(x, x.shape[-1], prefix)
        x = conv_bn(x, out_filters, 1, 1, f"{prefix}project")
        if stride == 1 and in_filters == out_filters:
            x = layers.Add(name=f"{prefix}add")([shortcut, x])
    x = conv_bn(x, make_divisible(x.shape[-1] * 6), 1, 1, "conv_1")
    x = act("hs", "conv_1_act")(x)
    last_point = _V3_LAST_POINT[size]
    if width > 1.0:
        last_point = make_divisible(last_point * width)
    # Keras' 1x1 convolutions on the pooled 1x1 map, as dense layers: same weights, and no
    # Flatten (which converts to shape arithmetic ops).
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dense(last_point, name="conv_2")(x)
    x = act("hs", "conv_2_act")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _common(family: str, **settings: Any) -> dict[str, Any]:
    return {
        "family": family,
        "task": "classify",
        "input_size": 224,
        "mean": MOBILENET_NORM[0],
        "std": MOBILENET_NORM[1],
        "reference_classes": 1000,
        **settings,
    }


_V1 = _common("mobilenet_v1")
_V2 = _common("mobilenet_v2")
_V3S = _common("mobilenet_v3_small")
_V3L = _common("mobilenet_v3_large")


@register_model(**_V1, width=0.25)
def mobilenet_v1_025(**kwargs: Any) -> keras.Model:
    """MobileNet V1, width 0.25, 224 px."""
    return _mobilenet_v1(**kwargs)


@register_model(**_V1, width=0.5)
def mobilenet_v1_050(**kwargs: Any) -> keras.Model:
    """MobileNet V1, width 0.5, 224 px."""
    return _mobilenet_v1(**kwargs)


@register_model(**_V1, width=0.75)
def mobilenet_v1_075(**kwargs: Any) -> keras.Model:
    """MobileNet V1, width 0.75, 224 px."""
    return _mobilenet_v1(**kwargs)


@register_model(**_V1, width=1.0)
def mobilenet_v1_100(**kwargs: Any) -> keras.Model:
    """MobileNet V1, width 1.0, 224 px."""
    return _mobilenet_v1(**kwargs)


@register_model(**{**_V1, "input_size": 64}, width=0.25, test=True)
def mobilenet_v1_test(**kwargs: Any) -> keras.Model:
    """MobileNet V1, width 0.25, 64 px, for tests."""
    return _mobilenet_v1(**kwargs)


@register_model(**_V2, width=0.35)
def mobilenet_v2_035(**kwargs: Any) -> keras.Model:
    """MobileNet V2, width 0.35, 224 px."""
    return _mobilenet_v2(**kwargs)


@register_model(**_V2, width=0.5)
def mobilenet_v2_050(**kwargs: Any) -> keras.Model:
    """MobileNet V2, width 0.5, 224 px."""
    return _mobilenet_v2(**kwargs)


@register_model(**_V2, width=0.75)
def mobilenet_v2_075(**kwargs: Any) -> keras.Model:
    """MobileNet V2, width 0.75, 224 px."""
    return _mobilenet_v2(**kwargs)


@register_model(**_V2, width=1.0)
def mobilenet_v2_100(**kwargs: Any) -> keras.Model:
    """MobileNet V2, width 1.0, 224 px."""
    return _mobilenet_v2(**kwargs)


@register_model(**{**_V2, "input_size": 64}, width=0.35, test=True)
def mobilenet_v2_test(**kwargs: Any) -> keras.Model:
    """MobileNet V2, width 0.35, 64 px, for tests."""
    return _mobilenet_v2(**kwargs)


@register_model(**_V3S, width=0.5)
def mobilenet_v3_small_050(**kwargs: Any) -> keras.Model:
    """MobileNet V3 small, width 0.5, 224 px."""
    return _mobilenet_v3(size="small", **kwargs)


@register_model(**_V3S, width=0.75)
def mobilenet_v3_small_075(**kwargs: Any) -> keras.Model:
    """MobileNet V3 small, width 0.75, 224 px."""
    return _mobilenet_v3(size="small", **kwargs)


@register_model(**_V3S, width=1.0)
def mobilenet_v3_small_100(**kwargs: Any) -> keras.Model:
    """MobileNet V3 small, width 1.0, 224 px."""
    return _mobilenet_v3(size="small", **kwargs)


@register_model(**_V3S, width=1.0)
def mobilenet_v3_small_minimal_100(**kwargs: Any) -> keras.Model:
    """MobileNet V3 small minimalistic (ReLU, 3x3, no squeeze-excite), width 1.0, 224 px."""
    return _mobilenet_v3(size="small", minimalistic=True, **kwargs)


@register_model(**{**_V3S, "input_size": 64}, width=0.25, test=True)
def mobilenet_v3_small_test(**kwargs: Any) -> keras.Model:
    """MobileNet V3 small, width 0.25, 64 px, for tests."""
    return _mobilenet_v3(size="small", **kwargs)


@register_model(**_V3L, width=0.75)
def mobilenet_v3_large_075(**kwargs: Any) -> keras.Model:
    """MobileNet V3 large, width 0.75, 224 px."""
    return _mobilenet_v3(size="large", **kwargs)


@register_model(**_V3L, width=1.0)
def mobilenet_v3_large_100(**kwargs: Any) -> keras.Model:
    """MobileNet V3 large, width 1.0, 224 px."""
    return _mobilenet_v3(size="large", **kwargs)


@register_model(**_V3L, width=1.0)
def mobilenet_v3_large_minimal_100(**kwargs: Any) -> keras.Model:
    """MobileNet V3 large minimalistic (ReLU, 3x3, no squeeze-excite), width 1.0, 224 px."""
    return _mobilenet_v3(size="large", minimalistic=True, **kwargs)


@register_model(**{**_V3L, "input_size": 64}, width=0.25, test=True)
def mobilenet_v3_large_test(**kwargs: Any) -> keras.Model:
    """MobileNet V3 large, width 0.25, 64 px, for tests."""
    return _mobilenet_v3(size="large", **kwargs)
