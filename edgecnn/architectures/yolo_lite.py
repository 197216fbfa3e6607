"""YOLO-LITE: the 7-layer detector for non-GPU computers (Pedoeem and Huang, 2018).

The paper's best "no batch norm" trial: 224 px input, every convolution 3x3 with a bias and
LeakyReLU(0.1), five 2x2 max pools (stride 32, a 7x7 grid at 224 px), and one ``yolo_v2``
output scale (softmax classes)::

    conv 16, pool | conv 32, pool | conv 64, pool | conv 128, pool | conv 128, pool
    conv 256 | output 1x1

About 241 M multiply-adds at 224 px for 20 classes and 5 anchors (the paper's 482 MFLOPS).
Default anchors are darknet's yolov2-tiny COCO anchors (the same fractions of the image as
``tiny_yolo_v2``), in pixels at 224 px.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import register_model
from edgecnn.architectures.tiny_yolo import YOLOV2_TINY_ANCHORS_416, scale_anchors

if TYPE_CHECKING:
    import keras


def _yolo_lite(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    num_anchors: int = 5,
    width: float = 1.0,
    batch_norm: bool = False,
    name: str = "yolo_lite",
) -> keras.Model:
    """Build a YOLO-LITE detector.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``, sides multiples of 32.
        num_anchors: anchors at the single scale.
        width: multiplier of all filter counts.
        batch_norm: add batch norm after each convolution (the paper's fastest trial has none).
        name: model name.

    Returns:
        A functional model with one raw output ``(batch, h/32, w/32, A*(5+C))``.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("yolo_lite", num_classes=20).output_shape  # doctest: +SKIP
    (None, 7, 7, 125)
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import conv_bn_act, image_input, scale_filters, yolo_output

    inputs = image_input(input_shape)
    x = inputs
    for i, filters in enumerate((16, 32, 64, 128, 128), start=1):
        x = conv_bn_act(
            x, scale_filters(filters, width), 3, act="leaky", batch_norm=batch_norm, name=f"block{i}"
        )
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = conv_bn_act(x, scale_filters(256, width), 3, act="leaky", batch_norm=batch_norm, name="block6")
    out = yolo_output(x, num_anchors=num_anchors, num_classes=num_classes, layout="yolo_v2", stride=32)
    return keras.Model(inputs, out, name=name)


_LITE: dict[str, Any] = {
    "family": "yolo_lite",
    "task": "detect",
    "layout": "yolo_v2",
    "strides": (32,),
    "num_anchors": 5,
    "class_activation": "softmax",
    "reference_classes": 20,
}


@register_model(**_LITE, input_size=224, anchors=scale_anchors(YOLOV2_TINY_ANCHORS_416, 224 / 416))
def yolo_lite(**kwargs: Any) -> keras.Model:
    """YOLO-LITE (no batch norm), 224 px, one scale, 5 anchors."""
    return _yolo_lite(**kwargs)


@register_model(
    **_LITE, input_size=64, width=0.25, anchors=scale_anchors(YOLOV2_TINY_ANCHORS_416, 64 / 416), test=True
)
def yolo_lite_test(**kwargs: Any) -> keras.Model:
    """YOLO-LITE at width 0.25, 64 px, for tests."""
    return _yolo_lite(**kwargs)
