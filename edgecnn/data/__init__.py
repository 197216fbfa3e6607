"""Datasets: data.yaml, the COCO / YOLO / Pascal VOC / class-folders formats, and their records.

Every format is read into the same records (:class:`ImageRecord` in a :class:`Split`), so
training, calibration and evaluation never see the format::

    split = load_split("data.yaml", "val")
    for record in split.records:
        record.path, record.boxes, record.class_ids   # xyxy pixels, class index into split.names

See docs/datasets.md for the layouts, the auto-detection rules and image ids.
"""

from edgecnn.data.coco import write_coco
from edgecnn.data.config import DataConfig, load_data_config, write_data_yaml
from edgecnn.data.detect import detect_format
from edgecnn.data.folders import write_folders
from edgecnn.data.imagesize import IMAGE_SUFFIXES, read_image_size
from edgecnn.data.load import check_splits_agree, load_split, load_splits
from edgecnn.data.records import FORMATS, TASKS, Format, ImageRecord, Split, Task
from edgecnn.data.voc import write_voc
from edgecnn.data.writers import write_dataset, write_split
from edgecnn.data.yolo import label_path, write_yolo

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "TASKS",
    "DataConfig",
    "Format",
    "ImageRecord",
    "Split",
    "Task",
    "check_splits_agree",
    "detect_format",
    "label_path",
    "load_data_config",
    "load_split",
    "load_splits",
    "read_image_size",
    "write_coco",
    "write_data_yaml",
    "write_dataset",
    "write_folders",
    "write_split",
    "write_voc",
    "write_yolo",
]
