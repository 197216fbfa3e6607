"""MiniVGGNet: the CIFAR-size VGG of Rosebrock's DL4CV (Starter, "MiniVGGNet" chapter).

Two blocks of ``(conv 3x3 -> BN -> ReLU) x 2 -> maxpool 2 -> dropout 0.25`` with 32 and 64
filters, then ``dense 512 -> BN -> ReLU -> dropout 0.5 -> dense C``. Deviation from the
book: batch norm comes before the ReLU (the book has ReLU -> BN) so that the converter folds
it into the convolution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import register_model

if TYPE_CHECKING:
    import keras


def _minivggnet(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    dropout: float = 0.5,
    name: str = "minivggnet",
) -> keras.Model:
    """Build a MiniVGGNet classifier.

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``; 32 px in the book.
        width: multiplier of the filter and unit counts (32, 64, 512 at 1.0).
        dropout: dropout before the logits (the blocks use ``dropout / 2``).
        name: model name.

    Returns:
        A functional model mapping images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("minivggnet", num_classes=10).count_params()  # doctest: +SKIP
    2170474
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import classifier_head, conv_bn_act, image_input, scale_filters

    inputs = image_input(input_shape)
    x = inputs
    for i, filters in enumerate((32, 64), start=1):
        f = scale_filters(filters, width)
        x = conv_bn_act(x, f, 3, name=f"block{i}a")
        x = conv_bn_act(x, f, 3, name=f"block{i}b")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        if dropout > 0:
            x = layers.Dropout(dropout / 2, name=f"block{i}_dropout")(x)
    x = layers.Flatten(name="fc_flatten")(x)
    x = layers.Dense(scale_filters(512, width), use_bias=False, name="fc1")(x)
    x = layers.BatchNormalization(name="fc1_bn")(x)
    x = layers.ReLU(name="fc1_act")(x)
    outputs = classifier_head(x, num_classes, dropout=dropout, pool="none")
    return keras.Model(inputs, outputs, name=name)


_MINIVGG: dict[str, Any] = {
    "family": "minivggnet",
    "task": "classify",
    "input_size": 32,
    "reference_classes": 10,
}


@register_model(**_MINIVGG)
def minivggnet(**kwargs: Any) -> keras.Model:
    """MiniVGGNet (Rosebrock's DL4CV), 32 px colour, CIFAR size."""
    return _minivggnet(**kwargs)


@register_model(**_MINIVGG, width=0.25, test=True)
def minivggnet_test(**kwargs: Any) -> keras.Model:
    """MiniVGGNet at width 0.25, for tests."""
    return _minivggnet(**kwargs)
