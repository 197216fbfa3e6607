"""Stratified train / val / test splits of one pool of images (``edgecnn data split``).

Many exports come as one pool (everything in ``train``). :func:`stratified_split` divides a
pool so that each split gets its share of the images (within one image) and of every class,
and every class appears in every split when it has at least as many images as there are
splits. :func:`split_dataset` reads a data.yaml, splits and writes the new dataset.

The method is iterative stratification (Sechidis, Tsoumakas and Vlahavas, 2011), which
handles images holding several classes (detection: the set of classes in the image;
classification: the image's label): classes are taken rarest first. A class's remaining
images are shared out by a quota per split (:func:`_class_quota`): a split that still lacks
the class gets one first, the others their share rounded down, and the leftover images go
where rounding up stays within one image of the share and the classes still to come leave
room, so that no split takes every class's rounding (which pushed the last classes far from
their shares). No split is filled past its size. Images without boxes fill the remaining
places. The image order is shuffled once with ``seed``, so the same seed gives the same
split.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.data.config import load_data_config, write_data_yaml
from edgecnn.data.load import load_split
from edgecnn.data.records import Format, ImageRecord, Task
from edgecnn.data.writers import write_split
from edgecnn.errors import UserError

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


def parse_ratios(text: str | Sequence[float]) -> list[float]:
    """``"0.7,0.2,0.1"`` (or a sequence) to 2 or 3 non-negative fractions summing to 1 (train, val[, test]).

    Raises:
        UserError: not numbers, not 2 or 3 of them, negative, or a sum other than 1.
    """
    try:
        ratios = [float(r) for r in text.split(",")] if isinstance(text, str) else [float(r) for r in text]
    except ValueError:
        raise UserError(f"--ratios: expected comma-separated numbers, got {text!r}") from None
    if len(ratios) not in (2, 3) or any(r < 0 for r in ratios) or not 0.999 <= sum(ratios) <= 1.001:
        raise UserError(f"--ratios needs 2 or 3 non-negative fractions summing to 1, got {ratios}")
    return ratios


def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """Images per split: ``n * ratio`` by largest remainder (each within 1 of its share; sum ``n``)."""
    shares = np.asarray(ratios, np.float64) * n / sum(ratios)
    counts = np.floor(shares).astype(int)
    order = np.argsort(-(shares - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return [int(c) for c in counts]


def stratified_split(
    records: Sequence[ImageRecord],
    task: Task,
    num_classes: int,
    ratios: Sequence[float],
    seed: int = 0,
) -> dict[str, list[ImageRecord]]:
    """Divide records into train / val[ / test] by ``ratios``, stratified by class.

    Args:
        records: the pool (each image once).
        task: ``detect`` (stratify on the set of classes in each image) or ``classify``
            (on the label).
        num_classes: number of class names.
        ratios: train, val[, test] fractions (see :func:`parse_ratios`); a zero leaves the
            split out.
        seed: the shuffle seed; the same seed gives the same split.

    Returns:
        ``{"train": [...], "val": [...], ...}``, each in the pool's order.

    Raises:
        UserError: a split with a non-zero ratio would get no image.
    """
    names = [name for name, r in zip(SPLIT_NAMES, ratios, strict=False) if r > 0]
    positive = [r for r in ratios if r > 0]
    counts = split_counts(len(records), positive)
    for name, count, ratio in zip(names, counts, positive, strict=True):
        if count == 0:
            raise UserError(
                f"a {ratio:g} share of {len(records)} images gives the {name} split no image; "
                "use more images or a larger ratio"
            )
    labels = [_labels(r, task) for r in records]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    members: list[list[int]] = [[] for _ in range(num_classes)]
    for i in order:
        for c in labels[i]:
            members[c].append(int(i))
    per_class = [np.asarray(images, np.int64) for images in members]

    fractions = np.asarray(positive, np.float64) / sum(positive)
    capacity = np.asarray(counts, np.int64)
    wanted = np.outer(fractions, [len(images) for images in per_class])  # (splits, classes)
    have = np.zeros_like(wanted, dtype=np.int64)
    assigned = np.full(len(records), -1, np.int64)
    labelled = np.array([bool(found) for found in labels])

    def assign(i: int, s: int) -> None:
        assigned[i] = s
        capacity[s] -= 1
        for c in labels[i]:
            wanted[s, c] -= 1
            have[s, c] += 1

    while True:
        left = [int((assigned[images] < 0).sum()) for images in per_class]
        open_classes = [c for c in range(num_classes) if left[c] > 0]
        if not open_classes:
            break
        c = min(open_classes, key=lambda k: (left[k], k))
        # What the later classes leave of each split: their wants, scaled to the images they
        # still hold (an image with several classes counts once).
        later_wants = wanted[:, [k for k in open_classes if k != c]].clip(min=0).sum(axis=1)
        unassigned = (assigned < 0) & labelled
        unassigned[per_class[c]] = False
        later_images = int(unassigned.sum())
        if later_wants.sum() > 0:
            later_wants *= later_images / later_wants.sum()
        room = capacity - later_wants
        quota = _class_quota(left[c], wanted[:, c], room, have[:, c] == 0, capacity)
        for i in per_class[c].tolist():
            if assigned[i] >= 0:
                continue
            open_quota = (quota > 0) & (capacity > 0)
            candidates = np.flatnonzero(open_quota if open_quota.any() else capacity > 0)
            s = int(max(candidates, key=lambda k: (quota[k], wanted[k, c], -k)))
            quota[s] -= 1
            assign(i, s)
    for i in order:  # images without a class
        if assigned[i] < 0:
            assign(int(i), int(np.argmax(capacity)))
    return {
        name: [r for r, s in zip(records, assigned, strict=True) if s == k] for k, name in enumerate(names)
    }


def _class_quota(
    n: int, wanted: np.ndarray, room: np.ndarray, lacking: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    """How many of a class's ``n`` remaining images each split gets.

    Each split's share of the class (``wanted``, rescaled to ``n``) rounded down, then the
    remaining images one each to the splits with the most ``room`` beyond their rounded share
    (``room`` is the split's capacity less what the classes still to come want of it): rounding
    up where the later classes leave space keeps every class within one image of its share and
    the splits at their sizes, instead of one split taking every class's rounding. A split
    still ``lacking`` the class gets one image first, when there are enough; no split gets more
    than its ``capacity``.
    """
    share = wanted.clip(min=0)
    share = share * (n / share.sum()) if share.sum() > 0 else capacity * (n / max(capacity.sum(), 1))
    quota = np.minimum(np.floor(share + 1e-9).astype(np.int64), capacity)
    if lacking.sum() <= n:
        quota = np.where(lacking & (quota == 0) & (capacity > 0), 1, quota)
    while quota.sum() > n:  # the lacking splits took images from the largest quotas
        quota[int(np.argmax(np.where(lacking, -1, quota)))] -= 1
    while quota.sum() < n:
        free = quota < capacity
        if not free.any():
            break
        below = free & (quota < np.ceil(share - 1e-9))  # rounding up keeps these within one
        pick = below if below.any() else free
        spare = pick & (room - quota >= 1)  # later classes leave this split an image to spare
        if not quota.any():  # the class's first image goes where most of it belongs (train)
            quota[int(np.argmax(np.where(pick, share, -np.inf)))] += 1
        elif spare.any():
            quota[int(np.argmax(np.where(spare, share - quota, -np.inf)))] += 1
        else:
            quota[int(np.argmax(np.where(pick, room - share, -np.inf)))] += 1
    return quota


def _labels(record: ImageRecord, task: Task) -> list[int]:
    if task == "classify":
        return [] if record.label is None else [int(record.label)]
    return sorted({int(c) for c in record.class_ids})


@dataclass(frozen=True)
class SplitPlan:
    """A stratified split of a dataset's pool, ready to write (:func:`plan_split`).

    Args:
        parts: split name -> records.
        names: the class names.
        task: ``detect`` or ``classify``.
        format: the source's format.
        category_ids: the source's COCO category ids (kept when writing COCO).
    """

    parts: dict[str, list[ImageRecord]]
    names: list[str]
    task: Task
    format: Format
    category_ids: list[int]

    @property
    def total(self) -> int:
        """Images over all splits."""
        return sum(len(records) for records in self.parts.values())


@dataclass(frozen=True)
class SplitReport:
    """What :func:`write_split_plan` wrote.

    Args:
        data_yaml: the new data.yaml.
        format: the format written.
        images: images per split.
        classes: per split, boxes (detection) or images (classification) per class.
        names: the class names.
    """

    data_yaml: Path
    format: Format
    images: dict[str, int]
    classes: dict[str, list[int]]
    names: list[str]


def plan_split(
    data_yaml: str | Path,
    ratios: Sequence[float] = (0.7, 0.2, 0.1),
    seed: int = 0,
    source: Sequence[str] = ("train",),
) -> SplitPlan:
    """Pool the ``source`` splits of a dataset and split them stratified (nothing is written).

    An image listed in two source splits is taken once; when the pooled splits' image ids
    clash, the pool is renumbered 1, 2, ... in order.

    Raises:
        UserError: bad ratios, an unreadable source, source splits with different classes.
    """
    ratios = parse_ratios(ratios)
    if not source:
        raise UserError("name at least one source split (train, val or test)")
    config = load_data_config(data_yaml)
    loaded = [load_split(config, name) for name in source]
    first = loaded[0]
    for other in loaded[1:]:
        if (other.task, other.names) != (first.task, first.names):
            raise UserError(f"the {first.name} and {other.name} splits have different tasks or class names")
    seen: set[str] = set()
    pool: list[ImageRecord] = []
    for split in loaded:
        for record in split.records:
            key = os.path.realpath(record.path)
            if key not in seen:
                seen.add(key)
                pool.append(record)
    if len({r.image_id for r in pool}) != len(pool):  # pooled splits numbered independently
        pool = [dataclasses.replace(r, image_id=k) for k, r in enumerate(pool, start=1)]
    parts = stratified_split(pool, first.task, len(first.names), ratios, seed)
    return SplitPlan(parts, list(first.names), first.task, first.format, list(first.category_ids))


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not an empty folder; choose a new --out")


def write_split_plan(
    plan: SplitPlan,
    out: str | Path,
    format: Format | None = None,
    progress: Callable[[int], None] | None = None,
) -> SplitReport:
    """Write a planned split and ``out/data.yaml`` (images are copied).

    Args:
        plan: from :func:`plan_split`.
        out: the new dataset's root; must not exist or be empty.
        format: the format to write; default the source's.
        progress: called with the number of images written so far, after each split.

    Raises:
        UserError: an out folder with files in it, or a format that does not fit the task.
            Images with the same file name are kept apart (``IMG_1.JPG``, ``IMG_1_2.JPG``).
    """
    out = Path(out)
    _check_out(out)
    fmt: Format = format or plan.format
    if (fmt == "folders") != (plan.task == "classify"):
        raise UserError(f"cannot write a {plan.task} dataset as {fmt} (classification uses folders only)")
    entries: dict[str, str] = {}
    written = 0
    placed: dict[Path, Path] = {}
    for name, records in plan.parts.items():
        try:
            path = write_split(
                records, plan.names, out, name, fmt, category_ids=plan.category_ids, placed=placed
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
        entries[name] = Path(os.path.relpath(path, out)).as_posix()
        written += len(records)
        if progress is not None:
            progress(written)
    return SplitReport(
        write_data_yaml(out / "data.yaml", plan.names, entries),
        fmt,
        {name: len(records) for name, records in plan.parts.items()},
        {name: _class_counts(records, plan.task, len(plan.names)) for name, records in plan.parts.items()},
        list(plan.names),
    )


def split_dataset(
    data_yaml: str | Path,
    out: str | Path,
    ratios: Sequence[float] = (0.7, 0.2, 0.1),
    seed: int = 0,
    format: Format | None = None,
    source: Sequence[str] = ("train",),
    progress: Callable[[int], None] | None = None,
) -> SplitReport:
    """Pool, split stratified and write: :func:`plan_split` then :func:`write_split_plan`.

    Args:
        data_yaml: the dataset to split.
        out: the new dataset's root; must not exist or be empty.
        ratios: train, val[, test] fractions.
        seed: the shuffle seed (same seed, same split).
        format: the format to write; default the source's.
        source: the splits to pool.
        progress: called with the number of images written so far, after each split.
    """
    _check_out(Path(out))
    return write_split_plan(plan_split(data_yaml, ratios, seed, source), out, format, progress)


def _class_counts(records: Sequence[ImageRecord], task: Task, num_classes: int) -> list[int]:
    if task == "classify":
        ids = [r.label for r in records if r.label is not None]
    else:
        ids = [int(c) for r in records for c in r.class_ids]
    return [int(v) for v in np.bincount(np.asarray(ids, np.int64), minlength=num_classes)]
