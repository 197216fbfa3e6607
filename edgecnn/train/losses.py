"""Training losses, pure TensorFlow functions of ``(y_true, raw model outputs)``.

Detection (:class:`YoloLoss`), with the targets of :mod:`edgecnn.train.targets` and the
decoding of the model spec (``centre = (k * sigmoid(t) - (k - 1) / 2 + cell) * stride`` with
``k = xy_scale``, ``size = anchor * exp(t)``), per scale:

* **box**: ``1 - CIoU`` (or ``1 - GIoU``) between the decoded prediction and the assigned box,
  averaged over the scale's positives;
* **objectness**: binary cross-entropy against 1 for positives and 0 for the rest, averaged
  over all anchors of the scale, except that a negative whose decoded box overlaps any
  ground-truth box with IoU above ``ignore_iou`` (0.5, YOLOv3) is not penalised: it found
  an object, only not at the anchor that was assigned to it;
* **class**: on positives, binary cross-entropy summed over classes for sigmoid heads
  (``yolo_v3``), softmax cross-entropy for softmax heads (``yolo_v2``); optional label
  smoothing.

The terms are weighted as YOLOv5's ``hyp.scratch-low.yaml`` does: ``box 0.05``, ``obj 1.0``,
``cls 0.5``, each times ``3 / number of scales``; objectness also times ``(input area /
640²)`` (fewer anchors at small inputs make the per-anchor mean larger) and per scale by
``OBJ_BALANCE`` (small strides have more anchors, with fewer positives each); the class
term is divided by 80 (YOLOv5's mean over classes times ``nc / 80``). The loss is a mean
per image; AdamW is insensitive to its overall scale.

Classification (:func:`classification_loss`): categorical cross-entropy from logits with
optional label smoothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import tensorflow as tf

from edgecnn.runtime.spec import OutputSpec
from edgecnn.train.config import LossConfig
from edgecnn.train.targets import target_key

#: Objectness weight per stride (YOLOv5's ``balance``: P3 4.0, P4 1.0, P5 0.4).
OBJ_BALANCE: dict[int, float] = {4: 4.0, 8: 4.0, 16: 1.0, 32: 0.4, 64: 0.1}
_EPS = 1e-7
_MAX_LOG_WH = 8.0  # exp(8) ~ 3000 x the anchor: keeps decoded sizes finite early in training


def box_iou(b1: tf.Tensor, b2: tf.Tensor, kind: Literal["iou", "giou", "ciou"] = "ciou") -> tf.Tensor:
    """IoU, GIoU or CIoU of xyxy boxes ``(..., 4)`` against ``(..., 4)``, elementwise.

    Finite for empty boxes (zero width or height), so masked-out slots never produce NaN.
    """
    x1 = tf.maximum(b1[..., 0], b2[..., 0])
    y1 = tf.maximum(b1[..., 1], b2[..., 1])
    x2 = tf.minimum(b1[..., 2], b2[..., 2])
    y2 = tf.minimum(b1[..., 3], b2[..., 3])
    inter = tf.maximum(x2 - x1, 0.0) * tf.maximum(y2 - y1, 0.0)
    w1, h1 = b1[..., 2] - b1[..., 0], b1[..., 3] - b1[..., 1]
    w2, h2 = b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1]
    union = w1 * h1 + w2 * h2 - inter + _EPS
    iou = inter / union
    if kind == "iou":
        return iou
    cw = tf.maximum(b1[..., 2], b2[..., 2]) - tf.minimum(b1[..., 0], b2[..., 0])
    ch = tf.maximum(b1[..., 3], b2[..., 3]) - tf.minimum(b1[..., 1], b2[..., 1])
    if kind == "giou":
        c_area = cw * ch + _EPS
        return iou - (c_area - union) / c_area
    c2 = cw**2 + ch**2 + _EPS
    rho2 = (
        (b2[..., 0] + b2[..., 2] - b1[..., 0] - b1[..., 2]) ** 2
        + (b2[..., 1] + b2[..., 3] - b1[..., 1] - b1[..., 3]) ** 2
    ) / 4
    v = (4 / math.pi**2) * (tf.atan(w2 / (h2 + _EPS)) - tf.atan(w1 / (h1 + _EPS))) ** 2
    alpha = tf.stop_gradient(v / (v - iou + (1 + _EPS)))
    return iou - (rho2 / c2 + v * alpha)


def pairwise_iou(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """IoU ``(B, N, M)`` of ``(B, N, 4)`` against ``(B, M, 4)`` xyxy boxes (0 for empty boxes)."""
    a = boxes1[:, :, None, :]
    b = boxes2[:, None, :, :]
    return box_iou(a, b, "iou")


class YoloLoss:
    """The detection loss of a YOLO model with the given spec (module docstring).

    Args:
        output: the spec's output section (layout, strides, anchors, class activation).
        input_width: model input width in pixels.
        input_height: model input height in pixels.
        num_classes: number of classes.
        config: gains and thresholds.

    Call it with ``(y_true, outputs)``: the batched target dict of
    :class:`~edgecnn.train.targets.YoloTargetFn` and the raw outputs in stride order; it
    returns ``(total, {"box": ..., "obj": ..., "cls": ...})``, scalars.
    """

    def __init__(
        self,
        output: OutputSpec,
        input_width: int,
        input_height: int,
        num_classes: int,
        config: LossConfig | None = None,
    ) -> None:
        if output.layout not in ("yolo_v2", "yolo_v3"):
            raise ValueError(f"YoloLoss needs a yolo layout, got {output.layout!r}")
        self.output = output
        self.input_width = input_width
        self.input_height = input_height
        self.num_classes = num_classes
        self.config = config or LossConfig()
        nl = len(output.strides)
        self.box_gain = self.config.box * 3 / nl
        self.obj_gain = self.config.obj * 3 / nl * (input_width * input_height) / 640**2
        self.cls_gain = self.config.cls * 3 / nl / 80
        self.softmax = output.class_activation == "softmax"
        self._scales = []
        for stride, anchors in zip(output.strides, output.anchors, strict=True):
            rows, cols = math.ceil(input_height / stride), math.ceil(input_width / stride)
            gy, gx = tf.meshgrid(
                tf.range(rows, dtype=tf.float32), tf.range(cols, dtype=tf.float32), indexing="ij"
            )
            grid = tf.reshape(tf.stack([gx, gy], axis=-1), (1, rows, cols, 1, 2))
            step = tf.constant([input_width / cols, input_height / rows], tf.float32)
            anchor = tf.reshape(tf.constant(anchors, tf.float32), (1, 1, 1, len(anchors), 2))
            balance = OBJ_BALANCE.get(int(stride), 1.0)
            self._scales.append((target_key(stride), rows, cols, len(anchors), grid, step, anchor, balance))
        self.xy_scale = float(output.xy_scale)

    def decode(self, raw: tf.Tensor, scale: int) -> tuple[tf.Tensor, tf.Tensor]:
        """``(boxes (B, H, W, A, 4) xyxy input pixels, raw (B, H, W, A, 5 + C))`` of one scale."""
        _, rows, cols, count, grid, step, anchor, _ = self._scales[scale]
        raw = tf.reshape(raw, (-1, rows, cols, count, 5 + self.num_classes))
        k = self.xy_scale
        centre = (tf.sigmoid(raw[..., 0:2]) * k - (k - 1) / 2 + grid) * step
        size = anchor * tf.exp(tf.minimum(raw[..., 2:4], _MAX_LOG_WH))
        return tf.concat([centre - size / 2, centre + size / 2], axis=-1), raw

    def __call__(
        self, y_true: Mapping[str, tf.Tensor], outputs: Sequence[tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The total loss and its parts (``box``, ``obj``, ``cls``) for one batch."""
        if not isinstance(outputs, list | tuple):
            outputs = [outputs]
        if len(outputs) != len(self._scales):
            raise ValueError(f"expected {len(self._scales)} outputs, got {len(outputs)}")
        cfg = self.config
        gt_boxes = tf.cast(y_true["boxes"], tf.float32)
        box_loss = tf.constant(0.0)
        obj_loss = tf.constant(0.0)
        cls_loss = tf.constant(0.0)
        for i, raw_out in enumerate(outputs):
            key, rows, cols, count, _, _, _, balance = self._scales[i]
            t = tf.cast(y_true[key], tf.float32)
            boxes, raw = self.decode(tf.cast(raw_out, tf.float32), i)
            pos = t[..., 4]
            num_pos = tf.maximum(tf.reduce_sum(pos), 1.0)

            iou = box_iou(boxes, t[..., :4], cfg.box_loss)
            box_loss += tf.reduce_sum((1.0 - iou) * pos) / num_pos

            flat = tf.reshape(tf.stop_gradient(boxes), (-1, rows * cols * count, 4))
            best = tf.reduce_max(pairwise_iou(flat, gt_boxes), axis=-1)
            ignore = tf.cast(tf.reshape(best, tf.shape(pos)) > cfg.ignore_iou, tf.float32) * (1.0 - pos)
            # YOLOv5's gr = 1: a positive's objectness target is its (detached) IoU.
            target = pos * tf.stop_gradient(tf.maximum(iou, 0.0)) if cfg.obj_iou else pos
            bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=raw[..., 4])
            obj_loss += balance * tf.reduce_mean(bce * (1.0 - ignore))

            class_ids = tf.cast(tf.maximum(t[..., 5], 0.0), tf.int32)
            onehot = tf.one_hot(class_ids, self.num_classes)
            logits = raw[..., 5:]
            ls = cfg.label_smoothing
            if self.softmax:
                labels = onehot * (1.0 - ls) + ls / self.num_classes
                ce = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            else:
                labels = onehot * (1.0 - ls) + ls / 2
                ce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), -1)
            cls_loss += tf.reduce_sum(ce * pos) / num_pos

        parts = {
            "box": box_loss * self.box_gain,
            "obj": obj_loss * self.obj_gain,
            "cls": cls_loss * self.cls_gain,
        }
        return parts["box"] + parts["obj"] + parts["cls"], parts


def classification_loss(
    labels: tf.Tensor,
    outputs: tf.Tensor,
    label_smoothing: float = 0.0,
    from_logits: bool = True,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Mean categorical cross-entropy of one-hot ``labels`` ``(B, C)`` and ``outputs`` ``(B, C)``.

    Args:
        labels: one-hot float labels.
        outputs: logits (``from_logits``) or probabilities.
        label_smoothing: mixes the one-hot labels with the uniform distribution.
        from_logits: whether ``outputs`` are logits.

    Returns:
        ``(loss, {"cls": loss})``.
    """
    labels = tf.cast(labels, tf.float32)
    num_classes = tf.cast(tf.shape(labels)[-1], tf.float32)
    labels = labels * (1.0 - label_smoothing) + label_smoothing / num_classes
    outputs = tf.cast(outputs, tf.float32)
    if from_logits:
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=outputs)
    else:
        ce = -tf.reduce_sum(labels * tf.math.log(tf.clip_by_value(outputs, _EPS, 1.0)), axis=-1)
    loss = tf.reduce_mean(ce)
    return loss, {"cls": loss}
