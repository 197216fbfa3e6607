"""Board-side post-processing in pure numpy: from raw model outputs to detections or labels.

* :mod:`~edgecnn.postprocess.letterbox`: resize frames to the model input (letterbox, stretch,
  centre crop) and map boxes back.
* :mod:`~edgecnn.postprocess.boxes`: box formats and IoU.
* :mod:`~edgecnn.postprocess.decode`: YOLO head outputs to boxes and class scores (and back).
* :mod:`~edgecnn.postprocess.filter`: thresholds, class filter, caps and NMS per frame.
* :mod:`~edgecnn.postprocess.nms`: greedy class-aware NMS, identical to OpenCV's.
* :mod:`~edgecnn.postprocess.classify`: class probabilities and top-k.
* :mod:`~edgecnn.postprocess.masks`: object masks (polygons a detection must not stand in).

Nothing here imports TensorFlow; OpenCV is used only to resize frames.
"""

from edgecnn.postprocess.classify import class_probabilities, topk
from edgecnn.postprocess.decode import decode_yolo, encode_yolo
from edgecnn.postprocess.filter import Detections, filter_detections
from edgecnn.postprocess.letterbox import Letterbox, center_crop, fit_to_input, letterbox, stretch
from edgecnn.postprocess.nms import batched_nms

__all__ = [
    "Detections",
    "Letterbox",
    "batched_nms",
    "center_crop",
    "class_probabilities",
    "decode_yolo",
    "encode_yolo",
    "filter_detections",
    "fit_to_input",
    "letterbox",
    "stretch",
    "topk",
]
