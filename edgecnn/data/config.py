"""``data.yaml``: where a dataset's splits are and what its classes are called.

The keys follow the Ultralytics convention::

    path: ../datasets/shapes   # dataset root; relative to this file's folder
    train: images/train        # relative to path (or absolute); a list of paths is allowed
    val: images/val
    test:                      # optional
    names: {0: circle, 1: square, 2: triangle}   # or a list
    format: yolo               # optional: coco, yolo, voc, folders (else auto-detected)
    task: detect               # optional: detect or classify (else from the format)

``download``, ``nc``, ``roboflow``, ``kpt_shape``, ``flip_idx`` and ``channels`` (found in
Ultralytics and Roboflow files) are accepted and ignored, except that ``nc`` must match
``names`` and that ``kpt_shape`` tells the YOLO reader to skip keypoints after each box. Any
other key is an error that names the key and its line; so is a key set twice (YAML would keep
the last silently).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from edgecnn.data._common import abspath
from edgecnn.data._files import path_kind
from edgecnn.data.records import Format, Task
from edgecnn.errors import DataError
from edgecnn.yamlcheck import duplicate_key, yaml_problem

SPLITS = ("train", "val", "test")
IGNORED_KEYS = ("download", "nc", "roboflow", "kpt_shape", "flip_idx", "channels")
#: The largest ``nc`` accepted (LVIS has 1203 classes, ImageNet-21k 21841): a larger one is a typo,
#: and without ``names`` each class gets a generated name.
MAX_CLASSES = 100_000

SplitValue = str | list[str] | None


class DataConfig(BaseModel):
    """The contents of a data.yaml file; build it with :func:`load_data_config`."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        None, description="Dataset root; relative paths resolve against the yaml file's folder."
    )
    train: SplitValue = Field(None, description="Training split: a path, or a list of paths, under path.")
    val: SplitValue = Field(None, description="Validation split: a path, or a list of paths, under path.")
    test: SplitValue = Field(None, description="Test split: a path, or a list of paths, under path.")
    names: list[str] | dict[int, str] | None = Field(
        None, description="Class names: a list, or a mapping {0: name, 1: name, ...}."
    )
    format: Format | None = Field(None, description="coco, yolo, voc or folders; auto-detected when absent.")
    task: Task | None = Field(None, description="detect or classify; folders means classify, else detect.")
    nc: int | None = Field(None, description="Number of classes (Ultralytics); must match names.")
    download: Any = Field(None, description="Ultralytics download recipe; ignored.")
    roboflow: Any = Field(None, description="Roboflow export information; ignored.")
    kpt_shape: list[int] | None = Field(
        None,
        description="Ultralytics pose sets: keypoints per object and values per keypoint; "
        "label lines then carry them after the box, which alone is read.",
    )
    flip_idx: Any = Field(None, description="Ultralytics pose sets: keypoint flip order; ignored.")
    channels: Any = Field(None, description="Ultralytics image channels; ignored (the model decides).")

    _yaml_path: Path = PrivateAttr(default=Path("data.yaml"))
    _key_lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @field_validator("names", mode="before")
    @classmethod
    def _names_as_text(cls, value: Any) -> Any:
        """Numbers become text (``names: [0, 1]``, as Ultralytics does); YAML booleans and nulls
        (an unquoted ``yes``, ``no``, ``on``, ``null``) are refused: their spelling is lost."""
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        for key, name in items:
            if isinstance(name, bool) or name is None:
                raise ValueError(
                    f"class {key} is {name!r}, not a name: YAML reads unquoted yes/no/on/off/null "
                    "that way; quote it"
                )
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, int | float) else v for k, v in value.items()}
        if isinstance(value, list):
            return [str(v) if isinstance(v, int | float) else v for v in value]
        return value

    @field_validator("names")
    @classmethod
    def _check_names(cls, value: list[str] | dict[int, str] | None) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, dict):
            if sorted(value) != list(range(len(value))):
                raise ValueError(
                    f"the ids of a names mapping must be 0..{len(value) - 1}, got {sorted(value)}"
                )
            value = [value[i] for i in range(len(value))]
        if not value:
            raise ValueError("names is empty")
        for name in value:
            if not name.strip():
                raise ValueError("a class name is empty")
        duplicates = sorted({n for n in value if value.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate class names: {', '.join(duplicates)}")
        return value

    @field_validator("kpt_shape")
    @classmethod
    def _check_kpt_shape(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) != 2 or value[0] < 1 or value[1] not in (2, 3)):
            raise ValueError(f"kpt_shape must be [keypoints, 2 or 3], got {value}")
        return value

    @field_validator("nc")
    @classmethod
    def _check_nc(cls, value: int | None, info: ValidationInfo) -> int | None:
        names = info.data.get("names")
        if value is not None and not 1 <= value <= MAX_CLASSES:
            raise ValueError(f"nc must be 1..{MAX_CLASSES}, got {value}")
        if value is not None and names is not None and value != len(names):
            raise ValueError(f"nc is {value} but names has {len(names)} entries")
        return value

    @property
    def yaml_path(self) -> Path:
        """The data.yaml file this config was read from."""
        return self._yaml_path

    @property
    def root(self) -> Path:
        """The dataset root: ``path`` resolved against the yaml's folder (the folder itself if unset)."""
        folder = self._yaml_path.parent
        return abspath(folder / self.path) if self.path else folder

    @property
    def class_names(self) -> list[str] | None:
        """``names`` as a list (a mapping is converted on validation), or None."""
        return list(self.names) if self.names is not None else None

    def splits(self) -> list[str]:
        """The split keys that are set, in train, val, test order."""
        return [s for s in SPLITS if getattr(self, s)]

    def line_of(self, key: str) -> str | None:
        """``"line N"`` of a top-level key in the yaml file, for error messages."""
        line = self._key_lines.get(key)
        return f"line {line}" if line else None

    def split_paths(self, split: str) -> list[Path]:
        """The existing, absolute paths a split points at.

        A relative value starting with ``../`` that does not exist is also tried without it,
        like Ultralytics does for Roboflow exports (``train: ../train/images``).

        Raises:
            DataError: unknown split name, split not set, or a path that does not exist or
                is neither a file nor a folder (a device or a named pipe, which would block).
        """
        if split not in SPLITS:
            raise DataError(self._yaml_path, f"unknown split '{split}' (use one of {', '.join(SPLITS)})")
        value = getattr(self, split)
        if not value:
            raise DataError(self._yaml_path, f"no '{split}' split is set")
        paths = []
        for item in [value] if isinstance(value, str) else value:
            path = self._resolve(item)
            kind = path_kind(path)
            if kind == "missing":
                raise DataError(self._yaml_path, f"{split} path {path} does not exist", self.line_of(split))
            if kind not in ("file", "folder"):
                message = f"{split} path {path} is a {kind}, not a file or folder"
                raise DataError(self._yaml_path, message, self.line_of(split))
            paths.append(path)
        return paths

    def missing_paths(self, split: str) -> list[Path]:
        """The paths a set split names that do not exist (after the ``../`` fallback)."""
        value = getattr(self, split) or []
        items = [value] if isinstance(value, str) else value
        return [path for path in map(self._resolve, items) if path_kind(path) == "missing"]

    def _resolve(self, item: str) -> Path:
        """A split value as an absolute path; a missing ``../x`` that exists as ``x`` is ``x``."""
        path = abspath(self.root / item)
        if path_kind(path) == "missing" and item.startswith("../"):
            fallback = abspath(self.root / item[3:])
            path = fallback if path_kind(fallback) != "missing" else path
        return path


def load_data_config(path: str | Path) -> DataConfig:
    """Read and validate a data.yaml file.

    Raises:
        DataError: the file is missing or not a file, is not valid YAML, sets a key twice, or has
            an unknown key or a bad value (the message names the key and the entry its line).
    """
    path = abspath(path)
    kind = path_kind(path)
    if kind not in ("file", "missing"):  # a named pipe would block, /dev/zero never end
        raise DataError(path, f"is a {kind}, not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise DataError(path, f"invalid YAML: {problem}", f"line {line}" if line else None) from None
    except RecursionError:
        raise DataError(path, "invalid YAML: nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise DataError(path, f"invalid YAML: {str(exc).split(';')[0]}") from None
    if not isinstance(raw, dict):
        raise DataError(path, "expected a mapping of keys (path, train, val, test, names, ...)")
    duplicate = duplicate_key(node)
    if duplicate:
        key, first, again = duplicate
        lines = f"on line {first}" if first == again else f"on line {first} and line {again}"
        message = f"key '{key}' is set twice, {lines} (YAML would keep the last)"
        raise DataError(path, message, f"line {again}")
    key_lines = {
        str(key.value): key.start_mark.line + 1
        for key, _ in (node.value if isinstance(node, yaml.MappingNode) else [])
    }
    try:
        config = DataConfig.model_validate({str(k): v for k, v in raw.items()})
    except ValidationError as exc:
        key, message = _describe(exc)
        line = key_lines.get(key)
        raise DataError(path, message, f"line {line}" if line else None) from None
    config._yaml_path = path
    config._key_lines = key_lines
    return config


def _describe(exc: ValidationError) -> tuple[str, str]:
    """The key at fault and a one-line message for the first validation error."""
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    known = [k for k in DataConfig.model_fields if k not in IGNORED_KEYS]
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return key, (
            f"unknown key '{key}'{hint}; known keys: {', '.join(known)} "
            f"(also accepted and ignored: {', '.join(IGNORED_KEYS)})"
        )
    message = error["msg"].removeprefix("Value error, ")
    description = DataConfig.model_fields[key].description if key in DataConfig.model_fields else None
    if len(error["loc"]) > 1 and description:  # a union's member errors say little on their own
        message += f" (expected {description[0].lower()}{description[1:].rstrip('.')})"
    return key, f"bad value for '{key}': {message}"


def write_data_yaml(
    path: str | Path,
    names: Sequence[str],
    splits: Mapping[str, str | Path | Sequence[str | Path]],
    *,
    root: str | Path | None = None,
    format: Format | None = None,
    task: Task | None = None,
) -> Path:
    """Write a data.yaml file.

    Args:
        path: the file to write.
        names: class names, written as an ``{id: name}`` mapping.
        splits: split key (train, val, test) -> path(s) relative to ``root`` (or absolute).
        root: the ``path`` key; omitted when None (the yaml's folder is then the root).
        format: written only when given (auto-detection otherwise).
        task: written only when given.

    Returns:
        The path written.
    """
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split keys {unknown}; use {', '.join(SPLITS)}")
    path = Path(path)
    doc: dict[str, Any] = {}
    if root is not None:
        doc["path"] = str(root)
    for key in SPLITS:
        if key in splits:
            value = splits[key]
            doc[key] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
    doc["names"] = dict(enumerate(names))
    if format is not None:
        doc["format"] = format
    if task is not None:
        doc["task"] = task
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
