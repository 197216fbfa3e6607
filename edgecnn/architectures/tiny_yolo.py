"""Tiny YOLO v2 and v3: the darknet ``yolov2-tiny.cfg`` and ``yolov3-tiny.cfg`` layouts.

Every convolution is conv (no bias) -> BN -> LeakyReLU(0.1); pools are 2x2 max pools. The
output convolutions are linear 1x1 convolutions with the spec's channel layout (per anchor
``tx, ty, tw, th, objectness, classes...``), see :func:`edgecnn.architectures.layers.yolo_output`.

``tiny_yolo_v2`` (one scale, stride 32, 5 anchors, ``yolo_v2`` layout: softmax classes)::

    conv 16, pool | conv 32, pool | conv 64, pool | conv 128, pool | conv 256, pool
    conv 512, pool 2x2 stride 1 (keeps the 13x13 grid at 416 px)
    conv 1024 | conv 512 | output 1x1

``tiny_yolo_v3`` (two scales, strides 16 and 32, 3 anchors each, ``yolo_v3`` layout:
sigmoid classes)::

    conv 16, pool | conv 32, pool | conv 64, pool | conv 128, pool
    conv 256 (route, stride 16), pool | conv 512, pool 2x2 stride 1
    conv 1024 | conv 256 1x1 (route)
      -> conv 512 | output stride 32
      -> conv 128 1x1, upsample x2, concat with the stride-16 route -> conv 256 | output stride 16

Outputs are ordered by ascending stride (stride 16 first), matching ``OutputSpec.strides``.
Default anchors are darknet's COCO anchors at 416 px; darknet's own ``yolov3-tiny.cfg``
masks the small scale with anchors 1, 2, 3 (a known quirk), here it takes 0, 1, 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import register_model

if TYPE_CHECKING:
    import keras

# yolov2-tiny.cfg (COCO) anchors are in 32-px grid cells: x 32 gives pixels at 416 px.
YOLOV2_TINY_ANCHORS_416 = (
    ((18.33, 21.68), (59.98, 66.0), (106.83, 175.18), (252.25, 112.89), (312.66, 293.38)),
)
YOLOV3_TINY_ANCHORS_416 = (
    ((10.0, 14.0), (23.0, 27.0), (37.0, 58.0)),
    ((81.0, 82.0), (135.0, 169.0), (344.0, 319.0)),
)


def scale_anchors(
    anchors: tuple[tuple[tuple[float, float], ...], ...], factor: float
) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Anchors (per scale, ``(w, h)`` pixels) multiplied by ``factor``, rounded to 0.01 px."""
    return tuple(tuple((round(w * factor, 2), round(h * factor, 2)) for w, h in scale) for scale in anchors)


def _tiny_yolo_v2(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    num_anchors: int = 5,
    width: float = 1.0,
    name: str = "tiny_yolo_v2",
) -> keras.Model:
    """Build a Tiny YOLO v2 detector (darknet ``yolov2-tiny.cfg``).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``, sides multiples of 32.
        num_anchors: anchors at the single scale.
        width: multiplier of all filter counts.
        name: model name.

    Returns:
        A functional model with one raw output ``(batch, h/32, w/32, A*(5+C))``.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> build_model("tiny_yolo_v2", num_classes=20).output_shape  # doctest: +SKIP
    (None, 13, 13, 125)
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import conv_bn_act, image_input, scale_filters, yolo_output

    def f(n: int) -> int:
        return scale_filters(n, width)

    inputs = image_input(input_shape)
    x = inputs
    for i, filters in enumerate((16, 32, 64, 128, 256), start=1):
        x = conv_bn_act(x, f(filters), 3, act="leaky", name=f"block{i}")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = conv_bn_act(x, f(512), 3, act="leaky", name="block6")
    x = layers.MaxPooling2D(2, strides=1, padding="same", name="block6_pool")(x)
    x = conv_bn_act(x, f(1024), 3, act="leaky", name="block7")
    x = conv_bn_act(x, f(512), 3, act="leaky", name="block8")
    out = yolo_output(x, num_anchors=num_anchors, num_classes=num_classes, layout="yolo_v2", stride=32)
    return keras.Model(inputs, out, name=name)


def _tiny_yolo_v3(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    num_anchors: int = 3,
    width: float = 1.0,
    name: str = "tiny_yolo_v3",
) -> keras.Model:
    """Build a Tiny YOLO v3 detector (darknet ``yolov3-tiny.cfg``).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``, sides multiples of 32.
        num_anchors: anchors per scale.
        width: multiplier of all filter counts.
        name: model name.

    Returns:
        A functional model with two raw outputs, stride 16 then stride 32, each
        ``(batch, h/s, w/s, A*(5+C))``.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> [o.shape for o in build_model("tiny_yolo_v3", num_classes=80).outputs]  # doctest: +SKIP
    [(None, 26, 26, 255), (None, 13, 13, 255)]
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import (
        conv_bn_act,
        image_input,
        scale_filters,
        upsample_nearest,
        yolo_output,
    )

    def f(n: int) -> int:
        return scale_filters(n, width)

    inputs = image_input(input_shape)
    x = inputs
    for i, filters in enumerate((16, 32, 64, 128), start=1):
        x = conv_bn_act(x, f(filters), 3, act="leaky", name=f"block{i}")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    route16 = conv_bn_act(x, f(256), 3, act="leaky", name="block5")
    x = layers.MaxPooling2D(2, name="block5_pool")(route16)
    x = conv_bn_act(x, f(512), 3, act="leaky", name="block6")
    x = layers.MaxPooling2D(2, strides=1, padding="same", name="block6_pool")(x)
    x = conv_bn_act(x, f(1024), 3, act="leaky", name="block7")
    route32 = conv_bn_act(x, f(256), 1, act="leaky", name="neck_s32")

    y32 = conv_bn_act(route32, f(512), 3, act="leaky", name="head_s32")
    out32 = yolo_output(y32, num_anchors=num_anchors, num_classes=num_classes, layout="yolo_v3", stride=32)

    x = conv_bn_act(route32, f(128), 1, act="leaky", name="neck_up")
    x = upsample_nearest(x, 2, name="neck_upsample")
    x = layers.Concatenate(name="neck_concat")([x, route16])
    y16 = conv_bn_act(x, f(256), 3, act="leaky", name="head_s16")
    out16 = yolo_output(y16, num_anchors=num_anchors, num_classes=num_classes, layout="yolo_v3", stride=16)
    return keras.Model(inputs, [out16, out32], name=name)


_V2: dict[str, Any] = {
    "family": "tiny_yolo_v2",
    "task": "detect",
    "layout": "yolo_v2",
    "strides": (32,),
    "num_anchors": 5,
    "class_activation": "softmax",
    "reference_classes": 80,
}
_V3: dict[str, Any] = {
    "family": "tiny_yolo_v3",
    "task": "detect",
    "layout": "yolo_v3",
    "strides": (16, 32),
    "num_anchors": 3,
    "class_activation": "sigmoid",
    "reference_classes": 80,
}


@register_model(**_V2, input_size=416, anchors=YOLOV2_TINY_ANCHORS_416)
def tiny_yolo_v2(**kwargs: Any) -> keras.Model:
    """Tiny YOLO v2 (darknet yolov2-tiny), 416 px, one scale, 5 anchors."""
    return _tiny_yolo_v2(**kwargs)


@register_model(
    **_V2, input_size=64, width=0.0625, anchors=scale_anchors(YOLOV2_TINY_ANCHORS_416, 64 / 416), test=True
)
def tiny_yolo_v2_test(**kwargs: Any) -> keras.Model:
    """Tiny YOLO v2 at width 1/16, 64 px, for tests."""
    return _tiny_yolo_v2(**kwargs)


@register_model(**_V3, input_size=416, anchors=YOLOV3_TINY_ANCHORS_416)
def tiny_yolo_v3(**kwargs: Any) -> keras.Model:
    """Tiny YOLO v3 (darknet yolov3-tiny), 416 px, strides 16 and 32, 3 anchors each."""
    return _tiny_yolo_v3(**kwargs)


@register_model(
    **_V3, input_size=64, width=0.0625, anchors=scale_anchors(YOLOV3_TINY_ANCHORS_416, 64 / 416), test=True
)
def tiny_yolo_v3_test(**kwargs: Any) -> keras.Model:
    """Tiny YOLO v3 at width 1/16, 64 px, for tests."""
    return _tiny_yolo_v3(**kwargs)
