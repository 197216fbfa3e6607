"""LeNet: the two-convolution MNIST classifier, in the layout of Rosebrock's DL4CV (Starter).

``conv 20@5x5 -> ReLU -> maxpool 2 -> conv 50@5x5 -> ReLU -> maxpool 2 -> dense 500 -> ReLU
-> dense C``, 28 px grey input scaled to [0, 1]; the head ends with logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import register_model

if TYPE_CHECKING:
    import keras


def _lenet(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    dropout: float = 0.0,
    name: str = "lenet",
) -> keras.Model:
    """Build a LeNet classifier.

    Args:
        num_classes: number of classes (logits out).
        input_shape: ``(height, width, channels)``.
        width: multiplier of the filter and unit counts (20, 50, 500 at 1.0).
        dropout: dropout rate before the last dense layer.
        name: model name.

    Returns:
        A functional model mapping ``(batch, h, w, c)`` images to ``(batch, num_classes)`` logits.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> model = build_model("lenet", num_classes=10)  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 10)
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import classifier_head, conv_bn_act, image_input, scale_filters

    inputs = image_input(input_shape)
    x = inputs
    for i, filters in enumerate((20, 50), start=1):
        x = conv_bn_act(x, scale_filters(filters, width), 5, name=f"block{i}", batch_norm=False)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = layers.Flatten(name="fc_flatten")(x)
    x = layers.Dense(scale_filters(500, width), name="fc1")(x)
    x = layers.ReLU(name="fc1_act")(x)
    outputs = classifier_head(x, num_classes, dropout=dropout, pool="none")
    return keras.Model(inputs, outputs, name=name)


_LENET: dict[str, Any] = {
    "family": "lenet",
    "task": "classify",
    "input_size": 28,
    "channels": 1,
    "reference_classes": 10,
    "min_input_size": 16,
}


@register_model(**_LENET)
def lenet(**kwargs: Any) -> keras.Model:
    """LeNet (Rosebrock's DL4CV layout), 28 px grey, MNIST size."""
    return _lenet(**kwargs)


@register_model(**_LENET, width=0.25, test=True)
def lenet_test(**kwargs: Any) -> keras.Model:
    """LeNet at width 0.25, for tests."""
    return _lenet(**kwargs)
