"""Per-frame work around the interpreter: input tensors and detections.

:class:`FrameProcessor` does what
:meth:`TFLiteModel.run_frame <edgecnn.runtime.interpreter.TFLiteModel.run_frame>` does,
split in two so that the daemon can run the halves on other threads than inference:
:meth:`~FrameProcessor.prepare` (frame to input tensor, on the capture thread) and
:meth:`~FrameProcessor.detections` (raw outputs to detections in source-frame pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from edgecnn.config.device import PostSettings
from edgecnn.postprocess import Detections, Letterbox, decode_yolo, filter_detections, topk
from edgecnn.postprocess.masks import foot_points, unmasked, zones_of
from edgecnn.runtime.interpreter import TFLiteModel, dequantize_tensor
from edgecnn.runtime.preprocessing import preprocess, preprocess_quantized
from edgecnn.runtime.spec import ModelSpec
from edgecnn.sinks.base import Detection


def iso_time(ts: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC with milliseconds: ``2026-11-30T12:00:00.100Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FrameProcessor:
    """Frame to input tensor, and raw outputs to :class:`~edgecnn.sinks.base.Detection`\\ s.

    Args:
        model: the loaded model (its spec set).
        settings: thresholds with class ids (:meth:`DeviceConfig.resolve`).
    """

    def __init__(self, model: TFLiteModel, settings: PostSettings) -> None:
        if model.spec is None:
            raise ValueError("FrameProcessor needs a model with a spec")
        self.model = model
        self.spec: ModelSpec = model.spec
        self.settings = settings
        self.masks = [np.array(polygon, dtype=np.float64) for polygon in settings.masks]
        self.zones = [(name, np.array(polygon, dtype=np.float64)) for name, polygon in settings.zones]

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """The input tensor (of the input's dtype) for ``image`` and the box transform back to it."""
        info, spec = self.model.input, self.spec.input
        if info.quantized:
            return preprocess_quantized(image, spec, info.effective_scale, info.zero_point, info.dtype)
        tensor, box_map = preprocess(image, spec)
        return tensor.astype(info.dtype, copy=False), box_map

    def detections(
        self,
        raw_outputs: Sequence[np.ndarray],
        box_map: Letterbox,
        full_size: tuple[int, int] | None = None,
    ) -> tuple[Detection, ...]:
        """Kept detections, best first, boxes in frame pixels (classifiers: top-k labels).

        Args:
            raw_outputs: the output tensors as the interpreter returned them.
            box_map: the transform :meth:`prepare` returned for this frame.
            full_size: ``(width, height)`` of a larger frame of the same scene to report
                boxes in (picamera2's main stream), or None.
        """
        outputs = [
            dequantize_tensor(r, info) for r, info in zip(raw_outputs, self.model.outputs, strict=True)
        ]
        labels, s = self.spec.labels, self.settings
        if self.spec.task == "classify":
            ranked = topk(outputs[0], k=len(labels), activation=self.spec.output.class_activation)
            kept = [
                Detection(labels[c], c, p)
                for c, p in ranked
                if (s.classes is None or c in s.classes) and p > s.class_conf.get(c, s.conf)
            ]
            return tuple(kept[: s.topk])
        spec_in = self.spec.input
        boxes, scores = decode_yolo(
            outputs, self.spec.output, spec_in.width, spec_in.height, len(labels), min_objectness=s.min_conf
        )
        found = filter_detections(
            boxes,
            scores,
            conf=s.conf,
            class_conf=s.class_conf or None,
            iou=s.iou,
            class_iou=s.class_iou or None,
            classes=s.classes,
            agnostic=s.agnostic,
            max_det=s.max_det,
        ).to_source(box_map)
        width, height = box_map.src_width, box_map.src_height  # the masks are fractions of this frame
        feet = None
        if (self.masks or self.zones) and len(found.boxes):
            feet = foot_points(np.asarray(found.boxes, dtype=np.float64), width, height)
        if self.masks and feet is not None:
            keep = unmasked(found.boxes, width, height, self.masks, feet)
            found = Detections(found.boxes[keep], found.scores[keep], found.class_ids[keep])
            feet = feet[keep]
        zones = zones_of(found.boxes, width, height, self.zones, feet)
        xyxy = found.boxes
        if full_size is not None:
            xyxy = xyxy * np.array(
                [full_size[0] / box_map.src_width, full_size[1] / box_map.src_height] * 2, dtype=np.float32
            )
        return tuple(
            Detection(labels[int(c)], int(c), float(p), tuple(float(v) for v in b), z)  # type: ignore[arg-type]
            for b, p, c, z in zip(xyxy, found.scores, found.class_ids, zones, strict=True)
        )
