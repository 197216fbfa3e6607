"""Load the splits of a dataset described by a data.yaml, whatever their format."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgecnn.data._common import Issues
from edgecnn.data.coco import read_coco
from edgecnn.data.config import DataConfig, load_data_config
from edgecnn.data.detect import detect_format
from edgecnn.data.folders import class_folders, read_folders
from edgecnn.data.records import Split
from edgecnn.data.voc import read_voc
from edgecnn.data.yolo import read_yolo
from edgecnn.errors import DataError

logger = logging.getLogger(__name__)


def load_split(data_yaml: str | Path | DataConfig, split: str = "val", *, skip_bad: bool = False) -> Split:
    """Read one split (``train``, ``val`` or ``test``) of a dataset.

    Args:
        data_yaml: a data.yaml path, or a config from :func:`load_data_config`.
        split: the split key in data.yaml.
        skip_bad: leave out images with a bad entry (missing or unreadable image, box outside
            the image, unknown class, malformed line or element) instead of raising; each is
            listed in :attr:`Split.skipped` and a warning gives the count.

    Raises:
        DataError: the split is missing, empty, its format unknown, or (without ``skip_bad``)
            an entry is bad; the message names the file and the entry.
    """
    config = data_yaml if isinstance(data_yaml, DataConfig) else load_data_config(data_yaml)
    paths = config.split_paths(split)
    formats = {config.format or detect_format(p) for p in paths}
    if len(formats) > 1:
        raise DataError(config.yaml_path, f"the {split} paths mix formats: {', '.join(sorted(formats))}")
    fmt = formats.pop()
    task = config.task or ("classify" if fmt == "folders" else "detect")
    if (task == "classify") != (fmt == "folders"):
        raise DataError(
            config.yaml_path,
            f"task '{task}' does not fit the {fmt} format (classification reads one folder per class; "
            "detection reads coco, yolo or voc)",
            config.line_of("task") or config.line_of("format"),
        )
    names = config.class_names
    if names is None and config.nc and fmt == "yolo":  # as Ultralytics does for names-less files
        names = [f"class_{i}" for i in range(config.nc)]
    if names is None and fmt in ("yolo", "voc"):
        raise DataError(config.yaml_path, f"names is required for the {fmt} format")
    if names is None and fmt == "folders":
        names = _folder_names(config)
    issues = Issues(skip_bad)
    category_ids: list[int] = []
    if fmt == "coco":
        if len(paths) > 1:
            raise DataError(config.yaml_path, f"a COCO split is one JSON file; {split} lists {len(paths)}")
        records, names, category_ids = read_coco(paths[0], names, issues)
    elif fmt == "yolo":
        keypoints = config.kpt_shape[0] * config.kpt_shape[1] if config.kpt_shape else 0
        records = read_yolo(paths, names, issues, root=config.root, keypoint_values=keypoints)
    elif fmt == "voc":
        records = read_voc(paths, split, names, issues)
    else:
        records, names = read_folders(paths, names, issues)
    if config.nc is not None and config.nc != len(names):
        raise DataError(config.yaml_path, f"nc is {config.nc} but the {split} split has {len(names)} classes")

    where = paths[0] if len(paths) == 1 else config.yaml_path
    if issues.skipped:
        logger.warning(
            "%s split: skipped %d bad entries (first: %s)", split, len(issues.skipped), issues.skipped[0]
        )
    if issues.dropped:
        logger.warning(
            "%s split: dropped %d boxes of zero width or height (first: %s)",
            split,
            len(issues.dropped),
            issues.dropped[0],
        )
    if not records:
        note = f"; {len(issues.skipped)} bad entries were skipped" if issues.skipped else ""
        raise DataError(where, f"the {split} split has no images{note}")
    if not names:
        raise DataError(where, f"the {split} split has no classes")
    return Split(split, task, fmt, names, records, issues.skipped, category_ids, issues.dropped)


def _folder_names(config: DataConfig) -> list[str]:
    """Class names of a class-folders dataset without ``names``: the sorted class folders of
    every split it sets, so that class ids agree between splits (an empty class folder in train
    only, a class missing from test)."""
    found: set[str] = set()
    for split in config.splits():
        try:
            paths = config.split_paths(split)
            if (config.format or detect_format(paths[0])) != "folders":
                continue
        except DataError:  # that split's own load reports it
            continue
        found.update(folder.name for path in paths if path.is_dir() for folder in class_folders(path))
    return sorted(found)


def check_splits_agree(splits: Mapping[str, Split], source: str | Path) -> None:
    """Refuse splits that a model cannot be trained and scored on together.

    Raises:
        DataError: two splits differ in task or in class names (their order included).
    """
    first_name, first = next(iter(splits.items()))
    for name, split in splits.items():
        if split.task != first.task:
            raise DataError(source, f"the {first_name} split is for {first.task} but {name} for {split.task}")
        if split.names != first.names:
            raise DataError(
                source,
                f"the {first_name} and {name} splits differ in classes: {', '.join(first.names)} vs "
                f"{', '.join(split.names)}",
            )


def load_splits(
    data_yaml: str | Path | DataConfig, splits: Sequence[str] | None = None, *, skip_bad: bool = False
) -> dict[str, Split]:
    """Load several splits (default: every split data.yaml sets, but for a ``test`` path that
    does not exist, skipped with a warning), e.g. to check a whole dataset.

    Raises:
        DataError: as :func:`load_split`, when no split is set, or when the splits differ in
            task or classes (:func:`check_splits_agree`; training would refuse them).
    """
    config = data_yaml if isinstance(data_yaml, DataConfig) else load_data_config(data_yaml)
    names = list(splits) if splits else config.splits()
    if not names:
        raise DataError(config.yaml_path, "no train, val or test split is set")
    missing = config.missing_paths("test") if not splits and "test" in names else []
    if missing:  # Roboflow writes `test: ../test/images` also into exports without a test split
        names.remove("test")
    loaded = {name: load_split(config, name, skip_bad=skip_bad) for name in names}
    check_splits_agree(loaded, config.yaml_path)
    if missing:  # after the other splits, so that a bad entry stays the one line on stderr
        logger.warning("test split skipped: %s does not exist (pass --split test to check it)", missing[0])
    return loaded
