"""Calibration sets for full-integer (int8) post-training quantisation.

A calibration set is a folder, built once by :func:`build_calibration_set` (``edgecnn calib
build``) and used by every later quantisation::

    calibration/NAME/
      README.md         source data.yaml, split, seed, count, class coverage table
      calibration.json  the same for programs: task, class names, image sizes, source
      manifest.txt      "<sha256>  images/<file>" per image (``sha256sum -c manifest.txt`` checks it)
      images/           copies of the chosen train images, byte for byte

The images come from the **train** split (the float-vs-int8 report measures on val), chosen
class-balanced: for classification each class in turn contributes an image; for detection
the next image is one holding the class with the fewest boxes chosen so far, so rare
classes get as many boxes as the data allows and every class present in the data appears.
Images without objects keep their share of the split. Fewer than :data:`MIN_IMAGES` images
are refused unless forced; fewer than :data:`RECOMMENDED_IMAGES` give a warning (TensorFlow's
post-training quantisation guide recommends about 100-500).

When a set is used, :func:`load_calibration_set` checks every image against the manifest,
:func:`check_calibration_fits` refuses a set whose ``calibration.json`` names other classes
(or another task) than the model (a set built from another dataset), and
:func:`representative_dataset` turns each image into the model's input tensor with
:func:`edgecnn.runtime.preprocessing.preprocess` itself, from the model's spec (letterbox,
normalisation, colour order), exactly as a camera frame on the board.

Pure numpy and OpenCV: nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.data import Split, load_split
from edgecnn.data.pipeline import read_image
from edgecnn.digest import sha256_file
from edgecnn.errors import UserError
from edgecnn.inputs import read_text_input
from edgecnn.runtime.preprocessing import preprocess
from edgecnn.runtime.spec import InputSpec, ModelSpec

logger = logging.getLogger(__name__)

#: Below this many images a set is refused unless forced.
MIN_IMAGES = 50
#: Below this many images a set is built with a warning (TensorFlow's guide: about 100-500).
RECOMMENDED_IMAGES = 100
MANIFEST = "manifest.txt"
README = "README.md"
IMAGES_DIR = "images"
#: The set's machine-readable record of where it came from (:class:`CalibrationRecord`).
RECORD = "calibration.json"
RECORD_VERSION = 1
#: The flag of ``edgecnn quantize`` that uses a set built for other classes anyway.
MISMATCH_FLAG = "--allow-calib-mismatch"

_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


@dataclass(frozen=True)
class ClassCoverage:
    """How one class is represented, in the train split and in the calibration set.

    ``boxes`` counts objects (detection) or images (classification, one per image).
    """

    name: str
    split_images: int
    split_boxes: int
    calib_images: int
    calib_boxes: int


@dataclass(frozen=True)
class CalibrationRecord:
    """Where a calibration set came from: the contents of its ``calibration.json``.

    Written by :func:`build_calibration_set`; sets built before it existed, or by hand, have
    none. The images' sizes are recorded, not checked against a model: every image goes
    through the model's own letterbox, so one set serves every input size.

    Attributes:
        task: ``detect`` or ``classify``.
        names: the dataset's class names, in its order.
        source: the data.yaml the set was built from (absolute).
        split: the split the images came from.
        seed: the seed of the choice.
        images: how many images the set holds.
        image_size: ``((min width, min height), (max width, max height))`` of the images, pixels.
    """

    task: str
    names: tuple[str, ...]
    source: str
    split: str
    seed: int
    images: int
    image_size: tuple[tuple[int, int], tuple[int, int]]

    def to_dict(self) -> dict[str, object]:
        """The JSON document (``calibration.json``)."""
        (w0, h0), (w1, h1) = self.image_size
        return {
            "version": RECORD_VERSION,
            "task": self.task,
            "names": list(self.names),
            "source": self.source,
            "split": self.split,
            "seed": self.seed,
            "images": self.images,
            "image_size": {"min": [w0, h0], "max": [w1, h1]},
        }

    @classmethod
    def load(cls, path: Path) -> CalibrationRecord:
        """Read a ``calibration.json``.

        Raises:
            UserError: unreadable, not JSON, or missing / mistyped keys, naming the file.
        """
        try:
            doc = json.loads(read_text_input(path, "calibration record", max_bytes=16 << 20))
            names = doc["names"]
            size = doc["image_size"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise TypeError("names is not a list of strings")
            return cls(
                task=str(doc["task"]),
                names=tuple(names),
                source=str(doc["source"]),
                split=str(doc["split"]),
                seed=int(doc["seed"]),
                images=int(doc["images"]),
                image_size=(
                    (int(size["min"][0]), int(size["min"][1])),
                    (int(size["max"][0]), int(size["max"][1])),
                ),
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            why = f"no {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0] if str(exc) else ""
            raise UserError(
                f"{path}: not a calibration record ({why or type(exc).__name__}); rebuild the set "
                f"with `edgecnn calib build`, or delete the file to use the set unchecked"
            ) from None


@dataclass(frozen=True)
class CalibrationSet:
    """A verified calibration set: its folder and its images in manifest order.

    Attributes:
        root: the set's folder.
        images: absolute paths of the images, in manifest order.
        manifest_sha256: sha256 of ``manifest.txt``: names the exact data a model was calibrated on.
        record: where the set came from (``calibration.json``); None for a set without one
            (built by an older edgecnn, or by hand).
    """

    root: Path
    images: tuple[Path, ...]
    manifest_sha256: str
    record: CalibrationRecord | None = None

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_calibration_set` wrote."""

    calibration: CalibrationSet
    source: Path
    split: str
    task: str
    seed: int
    coverage: tuple[ClassCoverage, ...]
    warnings: tuple[str, ...]


def _labels(split: Split) -> list[np.ndarray]:
    """Per image, the class id of each object (detection) or its one label (classification)."""
    if split.task == "classify":
        return [np.asarray([] if r.label is None else [r.label], np.int64) for r in split.records]
    return [r.class_ids for r in split.records]


def select_balanced(labels: list[np.ndarray], num_classes: int, n: int, seed: int = 0) -> list[int]:
    """Choose ``n`` image indices, balancing objects per class (see the module docstring).

    Args:
        labels: per image, the class ids of its objects (one id per image for classification;
            empty for an image without objects).
        num_classes: number of classes.
        n: how many images to choose; all of them when there are not more.
        seed: seeds the random order in which images of a class are taken.

    Returns:
        Indices into ``labels``, in the order chosen, without repeats.
    """
    total = len(labels)
    if n >= total:
        return list(np.random.default_rng(seed).permutation(total))
    order = np.random.default_rng(seed).permutation(total)
    pools: list[list[int]] = [[] for _ in range(num_classes)]
    background: list[int] = []
    for i in order:
        classes = np.unique(labels[i])
        if classes.size == 0:
            background.append(int(i))
        for c in classes:
            pools[int(c)].append(int(i))
    n_background = min(len(background), round(n * len(background) / total))
    n_objects = n - n_background
    counts = np.zeros(num_classes, np.int64)
    cursor = [0] * num_classes
    used: set[int] = set()
    chosen: list[int] = []
    while len(chosen) < n_objects:
        for c in range(num_classes):  # skip images already taken for another class
            while cursor[c] < len(pools[c]) and pools[c][cursor[c]] in used:
                cursor[c] += 1
        open_classes = [c for c in range(num_classes) if cursor[c] < len(pools[c])]
        if not open_classes:
            break
        c = min(open_classes, key=lambda k: (counts[k], k))
        i = pools[c][cursor[c]]
        used.add(i)
        chosen.append(i)
        counts += np.bincount(labels[i], minlength=num_classes)
    # Backgrounds take their share, and any room left when objects ran out.
    chosen.extend(background[: n - len(chosen)])
    return chosen


def coverage(split: Split, chosen: list[int]) -> list[ClassCoverage]:
    """Per class: images and objects in the split and among the ``chosen`` images."""
    labels = _labels(split)
    k = len(split.names)

    def tally(indices: list[int] | range) -> tuple[np.ndarray, np.ndarray]:
        images = np.zeros(k, np.int64)
        boxes = np.zeros(k, np.int64)
        for i in indices:
            boxes += np.bincount(labels[i], minlength=k)
            images[np.unique(labels[i])] += 1
        return images, boxes

    split_images, split_boxes = tally(range(len(labels)))
    calib_images, calib_boxes = tally(chosen)
    return [
        ClassCoverage(name, int(si), int(sb), int(ci), int(cb))
        for name, si, sb, ci, cb in zip(
            split.names, split_images, split_boxes, calib_images, calib_boxes, strict=True
        )
    ]


def build_calibration_set(
    data_yaml: str | Path,
    out: str | Path,
    n: int = 200,
    seed: int = 0,
    force: bool = False,
    split: str = "train",
    progress: Callable[[int], None] | None = None,
) -> BuildResult:
    """Choose class-balanced images of a dataset's train split and copy them into a calibration set.

    Args:
        data_yaml: the dataset's data.yaml.
        out: the set's folder (``calibration/NAME``); must not exist or be empty.
        n: images to choose (fewer when the split has fewer). Default 200.
        seed: seeds the choice; the same data and seed give the same set. Default 0.
        force: allow fewer than :data:`MIN_IMAGES` images.
        split: the split to draw from; anything but ``train`` leaks evaluation data into
            calibration, so the CLI does not offer it. Default ``train``.
        progress: called with the number of images copied so far.

    Returns:
        :class:`BuildResult`, with warnings (too few images, classes missing).

    Raises:
        UserError: fewer than :data:`MIN_IMAGES` images without ``force``, ``n`` < 1, an
            ``out`` folder that is not empty, or a bad dataset (:class:`~edgecnn.errors.DataError`).
    """
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UserError(
            f"{root}: already exists and is not an empty folder; choose another --out or remove it"
        )
    source = load_split(data_yaml, split)
    count = min(n, len(source))
    if count < MIN_IMAGES and not force:
        have = f" (the {split} split has {len(source)})" if len(source) < n else ""
        raise UserError(
            f"a calibration set of {count} images{have} is too small: at least {MIN_IMAGES} are needed "
            f"for stable int8 ranges ({RECOMMENDED_IMAGES}-500 recommended); add images or pass --force"
        )
    chosen = select_balanced(_labels(source), len(source.names), count, seed)
    table = coverage(source, chosen)
    warnings: list[str] = []
    if count < RECOMMENDED_IMAGES:
        warnings.append(
            f"only {count} calibration images: TensorFlow's guide recommends about {RECOMMENDED_IMAGES}-500"
        )
    missing = [c.name for c in table if c.split_images and not c.calib_images]
    if missing:
        present = sum(1 for c in table if c.split_images)
        why = f"{count} images for {present} classes" if count < present else "too few images"
        warnings.append(f"classes without a calibration image ({why}): {', '.join(missing)}")
    absent = [c.name for c in table if not c.split_images]
    if absent:
        warnings.append(f"classes absent from the {split} split: {', '.join(absent)}")
    for message in warnings:
        logger.warning("%s", message)

    images_dir = root / IMAGES_DIR
    images_dir.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(count)))
    lines = []
    paths = []
    for k, i in enumerate(chosen):
        record = source.records[i]
        read_image(record.path)  # a file OpenCV cannot decode would only fail at conversion time
        rel = f"{IMAGES_DIR}/{k + 1:0{width}d}_{record.path.name}"
        target = root / rel
        shutil.copyfile(record.path, target)
        lines.append(f"{sha256_file(target)}  {rel}\n")
        paths.append(target.resolve())
        if progress is not None:
            progress(k + 1)
    (root / MANIFEST).write_text("".join(lines))
    widths = [source.records[i].width for i in chosen]
    heights = [source.records[i].height for i in chosen]
    record = CalibrationRecord(
        task=source.task,
        names=tuple(source.names),
        source=str(Path(data_yaml).resolve()),
        split=split,
        seed=seed,
        images=len(paths),
        image_size=((min(widths), min(heights)), (max(widths), max(heights))),
    )
    (root / RECORD).write_text(json.dumps(record.to_dict(), indent=2) + "\n")
    result = BuildResult(
        calibration=CalibrationSet(root, tuple(paths), sha256_file(root / MANIFEST), record),
        source=Path(data_yaml),
        split=split,
        task=source.task,
        seed=seed,
        coverage=tuple(table),
        warnings=tuple(warnings),
    )
    (root / README).write_text(_readme(result, len(source)))
    return result


def _readme(result: BuildResult, split_size: int) -> str:
    detect = result.task == "detect"
    lines = [
        f"# Calibration set `{result.calibration.root.name}`",
        "",
        "Built by `edgecnn calib build` for full-integer int8 post-training quantisation.",
        "",
        f"- source: `{result.source}`",
        f"- split: {result.split} ({split_size} images)",
        f"- task: {result.task}",
        f"- images: {len(result.calibration)}, chosen class-balanced with seed {result.seed}",
        f"- manifest: `{MANIFEST}` (sha256 of every image; `sha256sum -c {MANIFEST}` checks them)",
        f"- record: `{RECORD}` (task, class names, image sizes, source; `edgecnn quantize` refuses "
        "a model with other classes)",
        "",
        "## Class coverage",
        "",
    ]
    if detect:
        split = result.split
        lines += [
            f"| class | {split} images | {split} boxes | calibration images | calibration boxes |",
            "|---|---:|---:|---:|---:|",
        ]
        rows = [
            (c.name, c.split_images, c.split_boxes, c.calib_images, c.calib_boxes) for c in result.coverage
        ]
    else:  # one label per image: the box columns would repeat the image columns
        lines += [f"| class | {result.split} images | calibration images |", "|---|---:|---:|"]
        rows = [(c.name, c.split_images, c.calib_images) for c in result.coverage]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    if result.warnings:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in result.warnings)]
    return "\n".join(lines) + "\n"


def load_calibration_set(path: str | Path) -> CalibrationSet:
    """Open a calibration set and check every image against its manifest.

    Raises:
        UserError: no such folder or manifest, a malformed manifest line, an entry outside
            the folder, a missing image, an image whose sha256 differs from the manifest
            (modified since it was built), or an image in ``images/`` the manifest does not list.
    """
    root = Path(path)
    manifest = root / MANIFEST
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: is a file; expected a calibration folder (built by `edgecnn calib build`)")
    if not root.is_dir():
        raise UserError(f"{root}: no such calibration folder (build one with `edgecnn calib build`)")
    if not manifest.is_file():
        raise UserError(
            f"{root}: no {MANIFEST}; not a calibration set (build one with `edgecnn calib build`)"
        )
    base = root.resolve()
    entries: list[tuple[Path, str]] = []
    text = read_text_input(manifest, "calibration manifest", max_bytes=64 << 20)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _MANIFEST_LINE.match(line)
        if match is None:
            raise UserError(f"{manifest} (line {number}): expected '<sha256>  <path>'")
        target = (base / match.group(2)).resolve()
        if not target.is_relative_to(base):
            raise UserError(f"{manifest} (line {number}): {match.group(2)} is outside the calibration folder")
        entries.append((target, match.group(1)))
    if not entries:
        raise UserError(f"{manifest}: lists no images")
    for target, digest in entries:
        shown = target.relative_to(base)
        if not target.is_file():
            raise UserError(f"{root}/{shown}: listed in {MANIFEST} but missing")
        if sha256_file(target) != digest:
            raise UserError(
                f"{root}/{shown}: sha256 differs from {MANIFEST}: the image changed after `edgecnn calib "
                "build`; rebuild the set or restore the image"
            )
    listed = {target for target, _ in entries}
    images_dir = base / IMAGES_DIR
    if images_dir.is_dir():
        extra = sorted(p for p in images_dir.rglob("*") if p.is_file() and p.resolve() not in listed)
        if extra:
            raise UserError(
                f"{root}/{extra[0].relative_to(base)}: not listed in {MANIFEST} "
                f"({len(extra)} unlisted file(s)); rebuild the set or remove them"
            )
    record = CalibrationRecord.load(root / RECORD) if (root / RECORD).is_file() else None
    return CalibrationSet(root, tuple(target for target, _ in entries), sha256_file(manifest), record)


def _classes(names: tuple[str, ...] | list[str], task: str, shown: int = 6) -> str:
    """``3 classify classes (cat, dog, bird)``, the list cut after ``shown`` names."""
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"{len(names)} {task} class{'es' if len(names) != 1 else ''} ({listed})"


def check_calibration_fits(
    calibration: CalibrationSet, spec: ModelSpec, model: str | Path, allow_mismatch: bool = False
) -> bool | None:
    """Refuse a calibration set built from a dataset with other classes than the model's.

    The set's ``calibration.json`` names the task and classes of the data it was drawn from;
    they must be the model's (the same names in any order: a dataset exported again). A set
    without the record (an older or hand-made one) cannot be checked: one info line says so.

    Args:
        calibration: the verified set (:func:`load_calibration_set`).
        spec: the model's spec.
        model: the model file, named in the message.
        allow_mismatch: use a set that does not match anyway (a deliberate choice), with a warning.

    Returns:
        True when the set matches, False when it does not and ``allow_mismatch`` let it through,
        None when the set has no record.

    Raises:
        UserError: the set's task or class names differ from the model's, without ``allow_mismatch``.
    """
    record = calibration.record
    if record is None:
        logger.info(
            "%s: no %s (built by an older edgecnn or by hand): cannot check that its images come "
            "from the model's data",
            calibration.root,
            RECORD,
        )
        return None
    if record.task == spec.task and sorted(record.names) == sorted(spec.labels):
        return True
    theirs = _classes(record.names, record.task)
    ours = _classes(spec.labels, spec.task)
    if not allow_mismatch:
        raise UserError(
            f"{calibration.root}: built from {record.source} with {theirs}, but {model} has {ours}; "
            f"build a set from the model's data (`edgecnn calib build`), or pass {MISMATCH_FLAG} "
            "to use it anyway"
        )
    logger.warning(
        "%s: built from %s with %s, not the model's %s; used anyway (%s)",
        calibration.root, record.source, theirs, ours, MISMATCH_FLAG,
    )  # fmt: skip
    return False


def calibration_tensors(
    calibration: CalibrationSet, input_spec: InputSpec, limit: int | None = None
) -> Iterator[np.ndarray]:
    """Yield each image as the model's ``(1, H, W, C)`` float32 input tensor.

    The tensor is :func:`edgecnn.runtime.preprocessing.preprocess` of the decoded image, exactly
    what the board computes for the same frame.
    """
    for path in calibration.images[:limit]:
        yield preprocess(read_image(path), input_spec)[0]


def representative_dataset(
    calibration: CalibrationSet,
    input_spec: InputSpec,
    progress: Callable[[int], None] | None = None,
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The ``representative_dataset`` callable for ``tf.lite.TFLiteConverter``.

    Each call returns a fresh generator of ``[tensor]`` (one input per model), tensors from
    :func:`calibration_tensors`; ``progress`` is called with the number of images yielded.
    """

    def generate() -> Iterator[list[np.ndarray]]:
        for k, tensor in enumerate(calibration_tensors(calibration, input_spec), start=1):
            yield [tensor]
            if progress is not None:
                progress(k)

    return generate
