"""MobileNetV2-YOLO: a ``keras.applications.MobileNetV2`` backbone with a two-scale YOLO head.

The head is the tiny-YOLOv3 neck in MobileNet style (depthwise-separable 3x3 convolutions and
ReLU6, as in the "MobileNetV2-YOLOv3-lite" family of models)::

    C4 = block_13_expand_relu (stride 16, 576 x alpha channels)
    C5 = out_relu             (stride 32, 1280 channels)
    P5 = conv 1x1 (h/2) on C5
      -> depthwise-separable 3x3 (h) | output stride 32
      -> conv 1x1 (h/4), upsample x2, concat with C4 -> depthwise-separable 3x3 (h/2) | output stride 16

with ``h = max(128, make_divisible(512 * alpha))``. Outputs are ordered by ascending stride,
``yolo_v3`` layout (sigmoid classes), 3 anchors per scale; inputs are RGB mapped to [-1, 1]
like the MobileNetV2 classifier, so ImageNet weights could be dropped into the backbone.
Default anchors are darknet's tiny-YOLOv3 COCO anchors scaled from 416 px to 224 px.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgecnn.architectures.registry import MOBILENET_NORM, register_model
from edgecnn.architectures.tiny_yolo import YOLOV3_TINY_ANCHORS_416, scale_anchors

if TYPE_CHECKING:
    import keras


def _mobilenet_v2_yolo(
    num_classes: int,
    *,
    input_shape: tuple[int, int, int],
    num_anchors: int = 3,
    width: float = 1.0,
    head_filters: int | None = None,
    name: str = "mobilenet_v2_yolo",
) -> keras.Model:
    """Build a MobileNetV2-backbone YOLO detector with outputs at strides 16 and 32.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``, sides multiples of 32.
        num_anchors: anchors per scale.
        width: the backbone's width multiplier ``alpha``.
        head_filters: filters of the stride-32 head convolution (``h`` above); None derives
            it from ``width``.
        name: model name.

    Returns:
        A functional model with two raw outputs, stride 16 then stride 32, each
        ``(batch, h/s, w/s, A*(5+C))``.

    Example:

    >>> from edgecnn.architectures import build_model
    >>> model = build_model("mobilenet_v2_yolo_035", num_classes=3, input_size=320)  # doctest: +SKIP
    >>> [o.shape for o in model.outputs]  # doctest: +SKIP
    [(None, 20, 20, 24), (None, 10, 10, 24)]
    """
    import keras
    from keras import layers

    from edgecnn.architectures.layers import (
        conv_bn_act,
        dw_separable,
        image_input,
        make_divisible,
        upsample_nearest,
        yolo_output,
    )

    h = head_filters or max(128, make_divisible(512 * width))
    inputs = image_input(input_shape)
    body = keras.applications.MobileNetV2(input_tensor=inputs, alpha=width, include_top=False, weights=None)
    c4 = body.get_layer("block_13_expand_relu").output
    c5 = body.get_layer("out_relu").output

    p5 = conv_bn_act(c5, h // 2, 1, act="relu6", name="neck_s32")
    y32 = dw_separable(p5, h, act="relu6", name="head_s32")
    out32 = yolo_output(y32, num_anchors=num_anchors, num_classes=num_classes, layout="yolo_v3", stride=32)

    x = conv_bn_act(p5, h // 4, 1, act="relu6", name="neck_up")
    x = upsample_nearest(x, 2, name="neck_upsample")
    x = layers.Concatenate(name="neck_concat")([x, c4])
    y16 = dw_separable(x, h // 2, act="relu6", name="head_s16")
    out16 = yolo_output(y16, num_anchors=num_anchors, num_classes=num_classes, layout="yolo_v3", stride=16)
    return keras.Model(inputs, [out16, out32], name=name)


_MNV2_YOLO: dict[str, Any] = {
    "family": "mobilenet_v2_yolo",
    "task": "detect",
    "mean": MOBILENET_NORM[0],
    "std": MOBILENET_NORM[1],
    "layout": "yolo_v3",
    "strides": (16, 32),
    "num_anchors": 3,
    "class_activation": "sigmoid",
    "reference_classes": 80,
}
_ANCHORS_224 = scale_anchors(YOLOV3_TINY_ANCHORS_416, 224 / 416)


@register_model(**_MNV2_YOLO, input_size=224, width=0.35, anchors=_ANCHORS_224)
def mobilenet_v2_yolo_035(**kwargs: Any) -> keras.Model:
    """MobileNetV2-YOLO, width 0.35, 224 px, strides 16 and 32."""
    return _mobilenet_v2_yolo(**kwargs)


@register_model(**_MNV2_YOLO, input_size=224, width=0.5, anchors=_ANCHORS_224)
def mobilenet_v2_yolo_050(**kwargs: Any) -> keras.Model:
    """MobileNetV2-YOLO, width 0.5, 224 px, strides 16 and 32."""
    return _mobilenet_v2_yolo(**kwargs)


@register_model(**_MNV2_YOLO, input_size=224, width=0.75, anchors=_ANCHORS_224)
def mobilenet_v2_yolo_075(**kwargs: Any) -> keras.Model:
    """MobileNetV2-YOLO, width 0.75, 224 px, strides 16 and 32."""
    return _mobilenet_v2_yolo(**kwargs)


@register_model(**_MNV2_YOLO, input_size=224, width=1.0, anchors=_ANCHORS_224)
def mobilenet_v2_yolo_100(**kwargs: Any) -> keras.Model:
    """MobileNetV2-YOLO, width 1.0, 224 px, strides 16 and 32."""
    return _mobilenet_v2_yolo(**kwargs)


@register_model(
    **_MNV2_YOLO,
    input_size=64,
    width=0.35,
    anchors=scale_anchors(YOLOV3_TINY_ANCHORS_416, 64 / 416),
    test=True,
)
def mobilenet_v2_yolo_test(**kwargs: Any) -> keras.Model:
    """MobileNetV2-YOLO, width 0.35, 64 px, for tests."""
    return _mobilenet_v2_yolo(**kwargs)
