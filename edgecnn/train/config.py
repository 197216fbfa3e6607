"""The training configuration (:class:`TrainConfig`) and the defaults of ``edgecnn train``.

Every field has a default, a description and bounds; ``edgecnn train`` flags map onto the
fields one to one, and the resolved configuration is saved in the run directory as
``train_config.json`` (``--resume`` reads it back).

Default models, measured here on 2 CPU cores (``benchmarks/train_quality.py``):

* detection: ``tiny_yolo_v3`` at width 0.5, 160 px (about 100 M multiply-adds per image):
  on the default synthetic set (600 images, 160 px, 4 classes) it passes validation mAP50
  0.9 within the 10-minute budget of the benchmark;
* classification: ``mobilenet_v2_035`` at 96 px, a real ImageNet-class design that still
  trains at a useful speed on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgecnn.data.augment import AugmentConfig
from edgecnn.train.targets import ANCHOR_T, MAX_BOXES

#: Default detector: ``(registry name, width multiplier, input size)``.
DEFAULT_DETECTOR: tuple[str, float | None, int] = ("tiny_yolo_v3", 0.5, 160)
#: Default classifier: ``(registry name, width multiplier, input size)``.
DEFAULT_CLASSIFIER: tuple[str, float | None, int] = ("mobilenet_v2_035", None, 96)

CONFIG_FILE = "train_config.json"
#: Default peak learning rate per optimiser (classification).
DEFAULT_LR: dict[str, float] = {"adamw": 1e-3, "sgd": 1e-2}
#: Default peak learning rate per optimiser for detectors trained from scratch. The default
#: detector on the synthetic set (before the neighbour-cell assignment) reached validation
#: mAP50 0.46 / 0.62 / 0.48 after 30 epochs at AdamW 3e-3 / 1e-2 / 3e-2, and 0.49 after 60
#: epochs at 1e-3.
DEFAULT_DETECT_LR: dict[str, float] = {"adamw": 1e-2, "sgd": 1e-2}


class LossConfig(BaseModel):
    """Weights and thresholds of the detection loss (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    box: float = Field(0.05, ge=0.0, description="Box loss gain (YOLOv5).")
    obj: float = Field(1.0, ge=0.0, description="Objectness loss gain (YOLOv5), before size scaling.")
    cls: float = Field(0.5, ge=0.0, description="Class loss gain (YOLOv5), before the division by 80.")
    box_loss: Literal["ciou", "giou"] = Field("ciou", description="IoU variant of the box loss.")
    ignore_iou: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Negatives whose box has a greater IoU with a ground truth are ignored.",
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="Class label smoothing.")
    obj_iou: bool = Field(
        False, description="Objectness target of a positive: its box IoU (YOLOv5) instead of 1."
    )


class TrainConfig(BaseModel):
    """Everything :func:`edgecnn.train.train` needs; the fields of ``edgecnn train``.

    Example:
        >>> TrainConfig(data="data.yaml", epochs=5).batch
        16
    """

    model_config = ConfigDict(extra="forbid")

    data: Path | None = Field(None, description="The dataset's data.yaml (not needed with resume).")
    model: str | None = Field(
        None, description="Registry name (`edgecnn models`); None: the default detector or classifier."
    )
    imgsz: int | None = Field(
        None, ge=16, le=4096, description="Input size in pixels; None: the default model's, or the variant's."
    )
    width: float | None = Field(None, gt=0, le=4, description="Width multiplier; None: the variant's.")
    resize: Literal["letterbox", "stretch", "crop"] | None = Field(
        None,
        description="How images meet the input size: letterbox (pad), stretch, or crop (classifiers: "
        "the centre); None: letterbox. The model carries it to the board.",
    )
    epochs: int = Field(100, ge=1, le=100000, description="Epochs to train.")
    batch: int = Field(16, ge=1, le=4096, description="Images per step.")
    out: Path = Field(Path("runs/train"), description="Run directory.")
    exist_ok: bool = Field(False, description="Overwrite a finished or interrupted run in `out`.")
    seed: int = Field(0, ge=0, description="Seeds weights, data order and augmentation.")
    resume: bool = Field(False, description="Continue the run in `out` from its last checkpoint.")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="Optimiser (see edgecnn.train.schedule).")
    lr: float | None = Field(
        None,
        gt=0,
        le=10,
        description="Peak learning rate; None: AdamW 1e-2 for detectors and 1e-3 for classifiers, SGD 1e-2.",
    )
    final_lr_ratio: float = Field(0.01, ge=0, le=1, description="Final learning rate / peak.")
    warmup_epochs: float = Field(3.0, ge=0, description="Linear warm-up, epochs (at least 100 steps).")
    weight_decay: float = Field(5e-4, ge=0, le=1, description="Decoupled weight decay.")
    momentum: float = Field(0.937, ge=0, lt=1, description="SGD momentum / AdamW beta_1.")
    bn_momentum: float | None = Field(
        0.9,
        ge=0,
        lt=1,
        description="Batch-norm moving-average momentum while training (PyTorch's 0.9); None: the model's.",
    )
    ema: bool = Field(True, description="Validate and save an exponential moving average of the weights.")
    ema_decay: float = Field(
        0.99, ge=0, lt=1, description="EMA decay once ramped up (window ~1/(1-decay) steps)."
    )
    patience: int = Field(
        50, ge=0, description="Stop after this many epochs without a better validation; 0: never."
    )
    val_every: int = Field(1, ge=1, description="Validate every N epochs (and always after the last).")
    augment: bool = Field(True, description="Augment training images (edgecnn.data.augment).")
    augment_config: AugmentConfig = Field(
        default_factory=AugmentConfig, description="Augmentation parameters when `augment` is on."
    )
    workers: int = Field(0, ge=0, le=256, description="tf.data threads; 0: automatic.")
    weights: Literal["imagenet"] | None = Field(
        None, description="'imagenet' loads Keras' ImageNet weights into a MobileNet backbone."
    )
    anchors: Literal["auto", "default"] = Field(
        "auto", description="auto: k-means on the training boxes; default: the variant's anchors."
    )
    anchor_t: float | None = Field(
        ANCHOR_T,
        gt=1,
        description="Extra positives for anchors within this size ratio; None: best anchor only.",
    )
    max_boxes: int = Field(
        MAX_BOXES, ge=1, le=10000, description="Ground-truth boxes per image for the loss."
    )
    loss: LossConfig = Field(default_factory=LossConfig, description="Detection loss gains and thresholds.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing (classification).")
    train_split: str = Field("train", description="Split to train on.")
    val_split: str = Field("val", description="Split to validate on.")
    skip_bad: bool = Field(False, description="Skip bad dataset entries instead of failing.")
    deterministic: bool = Field(
        True, description="Deterministic TensorFlow ops: the same seed gives the same weights."
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.data is None and not self.resume:
            raise ValueError("data is required (a data.yaml), unless resuming")
        return self

    def peak_lr(self, task: str = "classify") -> float:
        """The peak learning rate: ``lr``, or the optimiser's default for ``task``."""
        if self.lr is not None:
            return self.lr
        return (DEFAULT_DETECT_LR if task == "detect" else DEFAULT_LR)[self.optimizer]
