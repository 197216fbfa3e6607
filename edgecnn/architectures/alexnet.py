"""AlexNet at CIFAR size (32 px): the five-convolution, three-pool AlexNet layout scaled down.

Rosebrock's DL4CV AlexNet (ImageNet Bundle) takes 227 px inputs with an 11x11 stride-4 first
convolution; at 32 px that would leave nothing to pool, so ``alexnet_mini`` keeps AlexNet's
filter counts and block structure but with a 5x5 stride-1 first convolution and 1024-unit
dense layers:

``conv 96@5x5 -> pool | conv 256@5x5 -> pool | conv 384@3x3 -> conv 384@3x3 -> conv 256@3x3
-> pool | dense 1024 -> dense 1024 -> dense C``; every convolution is conv -> BN -> ReLU
(BN before ReLU so that it folds into the convolution), pools are 3x3 stride 2 (overlapping,
as in AlexNet), with dropout 0.25 after each pool and 0.5 in the dense layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import register_model

if TYPE_CHECKING:
    import keras


def _alexnet_mini(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    dropout: float = 0.5,
    fc_units: int = 1024,
    name: str = "alexnet_mini",
) -> keras.Model:
    """Build a CIFAR-size AlexNet classifier.

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``; 32 px by default.
        width: multiplier of the filter and unit counts.
        dropout: dropout in the dense layers (``dropout / 2`` after each pool).
        fc_units: units of the two hidden dense layers at width 1.0.
        name: model name.

    Returns:
        A functional model mapping images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("alexnet_mini", num_classes=10).output_shape  # doctest: +SKIP
    (None, 10)
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import classifier_head, conv_bn_act, image_input, scale_filters

    def pool(x: keras.KerasTensor, i: int) -> keras.KerasTensor:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{i}_pool")(x)
        return layers.Dropout(dropout / 2, name=f"block{i}_dropout")(x) if dropout > 0 else x

    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, scale_filters(96, width), 5, name="block1")
    x = pool(x, 1)
    x = conv_bn_act(x, scale_filters(256, width), 5, name="block2")
    x = pool(x, 2)
    x = conv_bn_act(x, scale_filters(384, width), 3, name="block3a")
    x = conv_bn_act(x, scale_filters(384, width), 3, name="block3b")
    x = conv_bn_act(x, scale_filters(256, width), 3, name="block3c")
    x = pool(x, 3)
    x = layers.Flatten(name="fc_flatten")(x)
    for i in (1, 2):
        x = layers.Dense(scale_filters(fc_units, width), use_bias=False, name=f"fc{i}")(x)
        x = layers.BatchNormalization(name=f"fc{i}_bn")(x)
        x = layers.ReLU(name=f"fc{i}_act")(x)
        if dropout > 0 and i == 1:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    outputs = classifier_head(x, num_classes, dropout=dropout, pool="none")
    return keras.Model(inputs, outputs, name=name)


_ALEXNET: dict[str, Any] = {
    "family": "alexnet_mini",
    "task": "classify",
    "input_size": 32,
    "reference_classes": 10,
}


@register_model(**_ALEXNET)
def alexnet_mini(**kwargs: Any) -> keras.Model:
    """AlexNet layout at CIFAR size, 32 px colour."""
    return _alexnet_mini(**kwargs)


@register_model(**_ALEXNET, width=0.125, test=True)
def alexnet_mini_test(**kwargs: Any) -> keras.Model:
    """CIFAR-size AlexNet at width 0.125, for tests."""
    return _alexnet_mini(**kwargs)
