"""The training input pipeline (``tf.data``) and a TensorFlow-free iterator for calibration and eval.

Every image goes through the same steps as a camera frame on the board: decoded with
:func:`cv2.imread` (BGR), converted to grey for grey models, letterboxed (or stretched, or centre-cropped) to
the model's :class:`~edgecnn.runtime.spec.InputSpec`, then
:func:`edgecnn.runtime.preprocessing.preprocess` itself does the colour order and the
``(pixel - mean) / std`` normalisation. Without augmentation a training tensor is therefore
bit-identical to what :func:`~edgecnn.runtime.preprocessing.preprocess` gives for the same file
(a test pins this). With augmentation (:mod:`edgecnn.data.augment`), the resized image is
augmented before normalisation, so colour order, padding grey and normalisation still match.

The per-image work runs in numpy and OpenCV inside :func:`tf.numpy_function`, mapped with
``num_parallel_calls=AUTOTUNE`` (OpenCV releases the GIL, so the map runs in parallel);
decoded, letterboxed images are cached in memory when the set is small (per split object
and input size, across datasets), so later epochs skip JPEG decoding.
``benchmarks/pipeline.py`` measures the throughput.

Determinism: the order (shuffle) and a per-sample seed for the augmentation both come from
``seed``; each sample's augmentation draws only from its own ``np.random.Generator``, and the
parallel map keeps the order, so the same seed gives the same batches, epoch after epoch,
while each epoch differs from the previous one.

TensorFlow is imported inside :func:`make_dataset` only: :func:`iter_preprocessed` (used for
int8 calibration and evaluation) never imports it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edgecnn.data.augment import AugmentConfig, augment_classification, augment_detection
from edgecnn.data.imagesize import decode_image
from edgecnn.data.records import ImageRecord, Split
from edgecnn.errors import DataError, UserError
from edgecnn.postprocess.letterbox import Letterbox, fit_to_input
from edgecnn.runtime.preprocessing import preprocess
from edgecnn.runtime.spec import InputSpec

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)

#: With ``cache=None``, decoded images are kept in memory when they take at most this many bytes.
CACHE_AUTO_BYTES = 1 << 30

#: ``target_fn(boxes (N, 4) float32 xyxy input pixels, classes (N,) int32) -> {name: array}``.
TargetFn = Callable[[np.ndarray, np.ndarray], Mapping[str, np.ndarray]]


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to a uint8 BGR array as the board sees frames (:func:`cv2.imread`).

    Raises:
        DataError: the file is missing or cannot be decoded.
    """
    try:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV asserts on some damaged headers (a size beyond its limits)
        image = None
    if image is None and Path(path).is_file():
        # OpenCV 5's imread fails on some files its decoder reads (a TIFF with an orientation tag).
        image = decode_image(np.fromfile(path, dtype=np.uint8))
    if image is None:
        raise DataError(path, "cannot read the image (missing, or not an image OpenCV decodes)")
    return image


def read_letterboxed(path: str | Path, input_spec: InputSpec) -> tuple[np.ndarray, Letterbox]:
    """Read an image and resize it to the model input as :func:`~edgecnn.runtime.preprocess` does.

    Returns:
        The uint8 image at the input size, ``(H, W)`` grey for 1-channel models, else
        ``(H, W, 3)`` BGR, not yet normalised (``preprocess`` of it gives the model tensor),
        and the :class:`Letterbox` from source pixels to input pixels.
    """
    frame = read_image(path)
    if input_spec.channels == 1:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return fit_to_input(frame, input_spec.resize, input_spec.width, input_spec.height, input_spec.pad_value)


def iter_preprocessed(
    split: Split, input_spec: InputSpec
) -> Iterator[tuple[np.ndarray, ImageRecord, Letterbox]]:
    """Yield each image of a split as the model's input tensor, without TensorFlow.

    For int8 calibration and evaluation: the tensor is exactly what the board computes for
    the same image.

    Yields:
        ``(tensor (1, H, W, C) float32, record, letterbox)``, in the split's order; the
        :class:`Letterbox` maps boxes in input pixels back to the record's pixels.

    Raises:
        DataError: an image cannot be read.
    """
    for record in split.records:
        tensor, info = preprocess(read_image(record.path), input_spec)
        yield tensor, record, info


@dataclass(frozen=True)
class _Decoded:
    """One image letterboxed to the input size, with its ground truth in input pixels."""

    image: np.ndarray  # uint8, input size, BGR or grey: exactly fit_to_input()'s output
    content: tuple[int, int, int, int]  # x0, y0, x1, y1 of the resized image inside the padding
    boxes: np.ndarray  # (N, 4) float32, input pixels
    classes: np.ndarray  # (N,) int32
    label: int


class _Source:
    """Decodes records on demand, optionally keeping them in memory (thread-safe enough:
    two threads may decode the same image once each; list assignment is atomic)."""

    def __init__(self, split: Split, spec: InputSpec, cache: bool) -> None:
        self.records = split.records
        self.spec = spec
        self.cache: list[_Decoded | None] | None = [None] * len(split.records) if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def get(self, index: int) -> _Decoded:
        if self.cache is not None:
            hit = self.cache[index]
            if hit is not None:
                return hit
        record = self.records[index]
        keep = ~record.ignore  # crowd regions and difficult objects are not training targets
        image, info = read_letterboxed(record.path, self.spec)
        x0, y0 = int(info.pad_x), int(info.pad_y)
        x1 = x0 + round(info.scale_x * info.src_width)
        y1 = y0 + round(info.scale_y * info.src_height)
        if x0 < 0 or y0 < 0:  # a centre crop: the whole input is content
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])
        decoded = _Decoded(
            image,
            (x0, y0, x1, y1),
            info.to_input(record.boxes[keep]),
            record.class_ids[keep].astype(np.int32),
            -1 if record.label is None else int(record.label),
        )
        if self.cache is not None:
            self.cache[index] = decoded
        return decoded

    def content(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The resized image without its padding, with boxes in its own pixels (for augmentation)."""
        d = self.get(index)
        x0, y0, x1, y1 = d.content
        return d.image[y0:y1, x0:x1], d.boxes - np.array([x0, y0, x0, y0], np.float32), d.classes


#: Per split (weakly held) and input spec, the cached source, shared by every make_dataset call
#: on that split: a training loop that builds a new dataset each epoch decodes each image once.
_SOURCES: weakref.WeakKeyDictionary[Split, dict[str, _Source]] = weakref.WeakKeyDictionary()


def _source(split: Split, spec: InputSpec, cache: bool) -> _Source:
    if not cache:
        return _Source(split, spec, cache=False)
    per_spec = _SOURCES.setdefault(split, {})
    key = spec.model_dump_json()
    if key not in per_spec:
        per_spec[key] = _Source(split, spec, cache=True)
    return per_spec[key]


def _pad_targets(boxes: np.ndarray, classes: np.ndarray, max_boxes: int) -> tuple[np.ndarray, np.ndarray]:
    out_boxes = np.zeros((max_boxes, 4), np.float32)
    out_classes = np.full(max_boxes, -1, np.int32)
    n = min(len(boxes), max_boxes)
    out_boxes[:n] = boxes[:n]
    out_classes[:n] = classes[:n]
    return out_boxes, out_classes


def make_dataset(
    split: Split,
    input_spec: InputSpec,
    batch_size: int = 32,
    training: bool = True,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    target_fn: TargetFn | None = None,
    max_boxes: int = 100,
    shuffle: bool = True,
    cache: bool | None = None,
    one_hot: bool = False,
) -> tf.data.Dataset:
    """Build the batched, prefetched ``tf.data.Dataset`` of a split for ``model.fit``.

    Args:
        split: the images and their ground truth (:func:`~edgecnn.data.load_split`).
        input_spec: the model's input settings (size, resize mode, colour order, mean/std).
        batch_size: images per batch.
        training: augment (see ``augment``), shuffle (see ``shuffle``) and drop a last partial
            batch (unless the whole split is smaller than one batch). False: the split's
            order, no augmentation, every image once.
        augment: the augmentation when ``training``; None means :class:`AugmentConfig`'s
            defaults (augmentation is not optional for small sets: see docs/training-data.md);
            :meth:`AugmentConfig.off` trains on plain images. Ignored when not ``training``.
        seed: seeds the order and every sample's augmentation (same seed, same batches).
        target_fn: detection only: ``target_fn(boxes, classes) -> {name: array}`` turns one
            image's boxes (``(N, 4)`` float32 xyxy, input pixels, after augmentation) and class
            ids (``(N,)`` int32) into training targets; it runs per sample in the parallel
            numpy stage. Called once on an empty image when the dataset is built to learn the
            names, shapes and dtypes, which must not depend on the number of boxes.
        max_boxes: detection without ``target_fn``: boxes kept per image (the first ones);
            a warning names the first image that has more.
        shuffle: shuffle the order each epoch when ``training``.
        cache: keep decoded, letterboxed images in memory, shared by every dataset made from
            the same ``split`` object and input size (so a new dataset per epoch decodes
            nothing again; records must not change meanwhile); None decides by size (at
            most :data:`CACHE_AUTO_BYTES`).
        one_hot: classification: float32 one-hot labels ``(B, num_classes)`` instead of int32 ``(B,)``.

    Returns:
        Detection: ``(images (B, H, W, C) float32, {"boxes": (B, max_boxes, 4) float32 xyxy
        input pixels, zero-padded, "classes": (B, max_boxes) int32, padded with -1})``, or
        ``(images, target_fn's dict batched)``. Classification: ``(images, labels)``.

    Raises:
        UserError: bad arguments (empty split, batch size, a classification split without labels).
    """
    import tensorflow as tf

    n = len(split)
    if n == 0:
        raise UserError(f"the {split.name} split has no images")
    if batch_size < 1 or max_boxes < 1:
        raise UserError(f"batch_size and max_boxes must be >= 1, got {batch_size} and {max_boxes}")
    detect = split.task == "detect"
    if not detect and any(r.label is None for r in split.records):
        raise UserError(f"the {split.name} split is for classification but has images without a label")
    if cache is None:
        cache = n * input_spec.width * input_spec.height * input_spec.channels <= CACHE_AUTO_BYTES
    config = (augment or AugmentConfig()) if training else AugmentConfig.off()
    source = _source(split, input_spec, cache)

    if detect and target_fn is not None:
        empty = target_fn(np.zeros((0, 4), np.float32), np.zeros(0, np.int32))
        probe = {k: np.asarray(v) for k, v in empty.items()}
        names = list(probe)
        specs = [(probe[k].dtype, probe[k].shape) for k in names]
    elif detect:
        names = ["boxes", "classes"]
        specs = [(np.dtype(np.float32), (max_boxes, 4)), (np.dtype(np.int32), (max_boxes,))]
    else:
        names = ["label"]
        specs = [(np.dtype(np.int32), ())]
    if detect:
        sample = _detect_fn(source, input_spec, config, seed, max_boxes, target_fn, names, specs)
    else:
        sample = _classify_fn(source, input_spec, config, seed)
    shape = (input_spec.height, input_spec.width, input_spec.channels)

    def to_tensors(index: tf.Tensor, sample_seed: tf.Tensor) -> tuple[tf.Tensor, object]:
        out = tf.numpy_function(
            sample, [index, sample_seed], [tf.float32, *(tf.as_dtype(d) for d, _ in specs)], stateful=False
        )
        out[0].set_shape(shape)
        for tensor, (_, dims) in zip(out[1:], specs, strict=True):
            tensor.set_shape(dims)
        if not detect:
            label = tf.one_hot(out[1], len(split.names), dtype=tf.float32) if one_hot else out[1]
            return out[0], label
        return out[0], dict(zip(names, out[1:], strict=True))

    indices = tf.data.Dataset.range(n)
    if training and shuffle:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((indices, seeds))
    ds = ds.map(to_tensors, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    drop = training and n > batch_size
    ds = ds.batch(batch_size, drop_remainder=drop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def _rng(seed: int, sample_seed: object) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, int(sample_seed) & 0xFFFFFFFFFFFFFFFF])


def _tensor(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The normalised model input for a uint8 image already at the input size."""
    return preprocess(image, spec)[0][0]


def _detect_fn(
    source: _Source,
    spec: InputSpec,
    config: AugmentConfig,
    seed: int,
    max_boxes: int,
    target_fn: TargetFn | None,
    names: list[str],
    specs: list[tuple[np.dtype, tuple[int, ...]]],
) -> Callable[[np.int64, np.int64], list[np.ndarray]]:
    """The per-image numpy function of a detection dataset."""
    out_size = (spec.width, spec.height)
    warned: list[bool] = []

    def sample(index: np.int64, sample_seed: np.int64) -> list[np.ndarray]:
        i = int(index)
        if config.is_off:
            d = source.get(i)
            image, boxes, classes = d.image, d.boxes, d.classes
        else:
            rng = _rng(seed, sample_seed)
            image, boxes, classes = source.content(i)
            image, boxes, classes = augment_detection(
                image,
                boxes,
                classes,
                config,
                rng,
                out_size=out_size,
                mosaic_source=lambda: source.content(int(rng.integers(len(source)))),
                pad_value=spec.pad_value,
            )
        classes = classes.astype(np.int32)
        if target_fn is not None:
            targets = target_fn(boxes, classes)
            arrays = [np.asarray(targets[k], dtype) for k, (dtype, _) in zip(names, specs, strict=True)]
            return [_tensor(image, spec), *arrays]
        if len(boxes) > max_boxes and not warned:
            warned.append(True)
            logger.warning(
                "%s has %d boxes after augmentation; only the first max_boxes=%d are used",
                source.records[i].path,
                len(boxes),
                max_boxes,
            )
        return [_tensor(image, spec), *_pad_targets(boxes, classes, max_boxes)]

    return sample


def _classify_fn(
    source: _Source, spec: InputSpec, config: AugmentConfig, seed: int
) -> Callable[[np.int64, np.int64], list[np.ndarray]]:
    """The per-image numpy function of a classification dataset."""
    out_size = (spec.width, spec.height)

    def sample(index: np.int64, sample_seed: np.int64) -> list[np.ndarray]:
        i = int(index)
        if config.is_off:
            d = source.get(i)
            image = d.image
        else:
            image, _, _ = source.content(i)
            image = augment_classification(
                image, config, _rng(seed, sample_seed), out_size=out_size, pad_value=spec.pad_value
            )
        return [_tensor(image, spec), np.int32(source.get(i).label)]

    return sample
