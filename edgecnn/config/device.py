"""The device config: what ``edgecnn run --config device.yaml`` runs, validated by pydantic.

Every key has a default (except ``model.path`` and ``source``), a description and bounds;
unknown keys are errors. ``source`` and each entry of ``sinks`` are unions discriminated
on ``type``, built from the plugins that imported (:mod:`edgecnn.sources`,
:mod:`edgecnn.sinks`). An error names the YAML line and the key path, as one line::

    device.yaml:14: thresholds.person: Input should be less than or equal to 1

Thresholds default to what the model carries (its spec's ``thresholds``); the config only
overrides: a number applies to every class, a mapping has an optional ``default`` plus one
value per label. Label names (in ``thresholds``, ``iou`` and ``classes``) are checked
against the model's labels by :meth:`DeviceConfig.resolve`, once the model is known.
``docs/daemon.md`` lists every key.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from edgecnn import sinks, sources
from edgecnn.errors import ConfigError, UserError
from edgecnn.inputs import read_text_input
from edgecnn.outputs import creation_problem
from edgecnn.runtime.backend import MAX_THREADS
from edgecnn.runtime.resolve import SETTING_FLAGS, parse_floats, parse_ints
from edgecnn.runtime.spec import Layout, ModelSpec
from edgecnn.sinks.jsonl import JsonlConfig
from edgecnn.yamlcheck import duplicate_key, yaml_problem

DEVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

Score = Annotated[float, Field(ge=0.0, le=1.0)]
Overlap = Annotated[float, Field(gt=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _union(types: Sequence[type[BaseModel]], what: str) -> Any:
    """The discriminated union of plugin configs (a single type needs no discriminator)."""
    if not types:
        raise RuntimeError(f"no {what} plugin could be imported: {sinks.failed() or sources.failed()}")
    if len(types) == 1:
        return types[0]
    return Annotated[functools.reduce(operator.or_, types), Field(discriminator="type")]


SourceConfig = _union(sources.config_types(), "source")
SinkConfig = _union(sinks.config_types(), "sink")


def _hostname() -> str:
    name = socket.gethostname().split(".")[0]
    return name if name and name[0].isalnum() else "edgecnn"


class ModelSettings(_Strict):
    """The model file, the interpreter, and settings for models without edgecnn metadata."""

    path: Path = Field(description="The .tflite model (its edgecnn metadata gives labels, input, anchors).")
    num_threads: int | None = Field(
        None, ge=1, le=MAX_THREADS, description="Interpreter threads; default: the interpreter's own choice."
    )
    validate_timeout: float = Field(
        30.0, ge=1.0, le=600.0, description="Seconds the child-process check may take to load and run it."
    )
    task: Literal["detect", "classify"] | None = Field(None, description="Without metadata: the task.")
    labels: list[str] | str | None = Field(
        None, description="Without metadata: class names, as a list, a labels.txt path or 'a,b,c'."
    )
    layout: Layout | None = Field(
        None, description="Without metadata: output layout (default by task and output shape)."
    )
    anchors: (
        str
        | list[list[tuple[Annotated[float, Field(gt=0, le=8192)], Annotated[float, Field(gt=0, le=8192)]]]]
        | None
    ) = Field(None, description="Without metadata: anchors per scale, 'w,h w,h; w,h ...' in input pixels.")
    strides: list[Annotated[int, Field(ge=1, le=1024)]] | None = Field(
        None, description="Without metadata: stride per scale (default: from the output grids)."
    )
    class_activation: Literal["sigmoid", "softmax", "none"] | None = Field(
        None, description="Without metadata: activation still to apply to class outputs."
    )
    xy_scale: Annotated[float, Field(ge=1.0, le=4.0)] | None = Field(
        None, description="Without metadata: box centre scale (YOLOv4 scale_x_y; 2.0 for YOLOv5-style heads)."
    )
    color_order: Literal["RGB", "BGR"] | None = Field(
        None, description="Without metadata: input channel order."
    )
    imgsz: Annotated[int, Field(ge=1, le=8192)] | str | None = Field(
        None, description="Without metadata: input size, N or 'WIDTHxHEIGHT' (default: the input tensor's)."
    )
    resize: Literal["letterbox", "stretch", "crop"] | None = Field(
        None, description="Without metadata: resize mode."
    )
    pad_value: Annotated[int, Field(ge=0, le=255)] | None = Field(
        None, description="Without metadata: letterbox padding grey (default 114)."
    )
    mean: list[Annotated[float, Field(ge=-255.0, le=255.0)]] | None = Field(
        None, description="Without metadata: per-channel mean in 0..255 units."
    )
    std: list[Annotated[float, Field(gt=0.0, le=255.0)]] | None = Field(
        None, description="Without metadata: per-channel std in 0..255 units."
    )

    def spec_overrides(self) -> dict[str, Any]:
        """The metadata settings given here, as :func:`~edgecnn.runtime.resolve.resolve_spec` keywords."""
        return {key: getattr(self, key) for key in SPEC_KEYS if getattr(self, key) is not None}


#: The ``model:`` keys for models without metadata (:func:`~edgecnn.runtime.resolve.resolve_spec`
#: keywords; the thresholds have their own top-level keys).
SPEC_KEYS = (
    "task",
    "labels",
    "imgsz",
    "color_order",
    "mean",
    "std",
    "resize",
    "pad_value",
    "layout",
    "anchors",
    "strides",
    "class_activation",
    "xy_scale",
)


#: A zone's name: an MQTT topic level as it is.
ZONE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A mask or zone: points ``[x, y]`` in fractions of the frame.
Polygon = list[tuple[float, float]]


def _check_polygon(polygon: Polygon, what: str) -> None:
    """Refuse a mask or zone polygon of fewer than 3 points, or with points off the frame."""
    if len(polygon) < 3:
        raise ValueError(f"{what} needs at least 3 points [x, y], got {len(polygon)}")
    if not all(0.0 <= v <= 1.0 for point in polygon for v in point):
        raise ValueError(f"{what}: points are fractions of the frame, x and y from 0 to 1")


class TrackSettings(_Strict):
    """Object tracking (``track:``): ids that follow objects across frames, and events."""

    iou: float = Field(
        0.3,
        gt=0.0,
        le=1.0,
        description="Least IoU between a track's predicted box and a detection to match them.",
    )
    max_lost_s: float = Field(
        2.0, ge=0.0, le=3600.0, description="Seconds a track may go unmatched (hidden) before it ends."
    )
    min_hits: int = Field(
        2,
        ge=1,
        le=100,
        description="Frames an object must be matched on before it gets an id and a 'new' event.",
    )
    start_conf: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Least score of a detection that starts a track (weaker ones only continue one).",
    )
    zone_hits: int = Field(
        3,
        ge=1,
        le=100,
        description="Detections in a row a followed object must stand in (or out of) a zone before it "
        "counts as entering (or leaving) it and gets an 'update' event; 1: at once.",
    )
    stationary_s: float = Field(
        10.0,
        ge=0.0,
        le=86400.0,
        description="Seconds a followed object's box must stay put (IoU >= 0.6 with where it stopped) "
        "before an 'update' event says it is stationary (a parked car); another when it moves; 0: never.",
    )


@dataclass(frozen=True)
class PostSettings:
    """Thresholds with label names resolved to class ids: what post-processing needs per frame."""

    task: str
    conf: float
    class_conf: dict[int, float]
    iou: float
    class_iou: dict[int, float]
    classes: tuple[int, ...] | None
    agnostic: bool
    max_det: int
    topk: int
    masks: tuple[tuple[tuple[float, float], ...], ...] = ()
    zones: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    track: TrackSettings | None = None

    @property
    def min_conf(self) -> float:
        """The lowest confidence threshold of any class that can be kept."""
        values = [self.conf, *self.class_conf.values()]
        if self.classes is not None:
            values = [self.class_conf.get(c, self.conf) for c in self.classes]
        return min(values)


class DeviceConfig(_Strict):
    """Everything ``edgecnn run`` needs: model, source, thresholds and sinks."""

    device: str = Field(
        default_factory=_hostname,
        pattern=DEVICE_NAME,
        description="Device name: MQTT topic level, health name (default: the host name).",
    )
    model: ModelSettings = Field(description="The model and its interpreter.")
    source: SourceConfig = Field(description="Where frames come from; 'type' picks the plugin.")
    thresholds: dict[str, Score] | None = Field(
        None,
        description="Minimum score to keep a detection: a number, or {default: .., <label>: ..}; "
        "default: the model's own.",
    )
    iou: dict[str, Overlap] | None = Field(
        None,
        description="NMS IoU threshold: a number, or {default: .., <label>: ..}; default: the model's own.",
    )
    classes: list[str] = Field(default_factory=list, description="Keep only these labels (empty: all).")
    max_det: int | None = Field(
        None, ge=1, le=30000, description="Detections kept per frame; default: the model's own."
    )
    agnostic: bool = Field(False, description="NMS across classes (a box of one class suppresses others).")
    topk: int = Field(
        5, ge=1, le=1000, description="Classifiers: labels reported per frame (above threshold)."
    )
    masks: list[list[tuple[float, float]]] = Field(
        default_factory=list,
        description="Detectors: polygons [[x, y], ...] in fractions 0..1 of the frame; a detection whose "
        "foot point (bottom middle) is inside one is dropped.",
    )
    zones: dict[str, Polygon] = Field(
        default_factory=dict,
        description="Detectors: named polygons [[x, y], ...] in fractions 0..1 of the frame; each "
        "detection lists the zones its foot point is in.",
    )
    track: TrackSettings | None = Field(
        None,
        description="Detectors: follow objects across frames (track ids, new/update/end events); "
        "true or a mapping turns it on.",
    )
    sinks: list[SinkConfig] = Field(
        default_factory=lambda: [JsonlConfig(type="jsonl")],
        description="Where results go; default: JSON lines on stdout.",
    )
    stop_timeout: float = Field(
        4.0, ge=0.5, le=30.0, description="Seconds to flush sinks and release the camera on SIGTERM."
    )
    state_dir: Path | None = Field(
        None, description="Writable directory for sinks' files; default $STATE_DIRECTORY, else the cwd."
    )

    _origin: _Origin | None = PrivateAttr(default=None)

    @field_validator("thresholds", "iou", mode="before")
    @classmethod
    def _per_class(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"default": value}
        return value

    @field_validator("track", mode="before")
    @classmethod
    def _track_switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    @field_validator("masks")
    @classmethod
    def _check_masks(cls, value: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for polygon in value:
            _check_polygon(polygon, "a mask")
        return value

    @field_validator("zones")
    @classmethod
    def _check_zones(cls, value: dict[str, Polygon]) -> dict[str, Polygon]:
        for name, polygon in value.items():
            if not ZONE_NAME.fullmatch(name):
                raise ValueError(f"zone name {name!r}: use letters, digits, _ and - (an MQTT topic level)")
            _check_polygon(polygon, f"zone {name!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> DeviceConfig:
        if self.agnostic and self.iou and set(self.iou) - {"default"}:
            raise ValueError("per-class iou values need agnostic: false")
        return self

    @property
    def state_path(self) -> Path:
        """The directory for sinks' files (``state_dir``, ``$STATE_DIRECTORY`` or the cwd)."""
        if self.state_dir is not None:
            return self.state_dir
        return Path(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or ".")

    def check_sinks_apart(self) -> None:
        """Refuse sinks that would collide wherever the config runs: two ``http`` sinks on one
        port, two sinks writing the same path as written, a sink writing the model, source or
        labels path. Needs no file system, so ``edgecnn package`` checks a board's config with
        it; :meth:`check_outputs` repeats the path part on the real files (links included).

        Raises:
            ConfigError: one line naming the key at fault.
        """
        taken: dict[str, str] = {}
        for what, loc, value in self._inputs():
            if isinstance(value, str | Path):
                taken[os.path.normpath(value)] = f"{what} ({self.setting_name(*loc)})"
        ports: dict[int, str] = {}
        for i, sink in enumerate(self.sinks):
            if getattr(sink, "type", None) == "http" and sink.port:
                where = self.where("sinks", i, "port")
                if sink.port in ports:
                    raise ConfigError(f"{where}: port {sink.port} is taken by {ports[sink.port]}")
                ports[sink.port] = f"the http sink {self.setting_name('sinks', i)}"
        for i, path, _, where in self._sink_outputs():
            key = os.path.normpath(path)
            if key in taken:
                raise ConfigError(f"{where}: {path} is also {taken[key]}; refusing to write to it")
            taken[key] = f"the output of {self.setting_name('sinks', i)}"

    def check_outputs(self) -> None:
        """Refuse outputs that cannot work, before anything is written: a sink's file or
        folder below a file, a file that is a folder (or the reverse), an output that is the
        model, the source or the labels file, two sinks writing the same place, two ``http``
        sinks on one port. Needs the file system, so it is not part of validation; start-up
        (:func:`~edgecnn.daemon.startup.start_up`) calls it first.

        Raises:
            ConfigError: one line naming the key (or flag) at fault.
        """
        self.check_sinks_apart()
        taken: dict[tuple[object, ...], str] = {}  # file identity -> what it is, for messages
        for what, loc, value in self._inputs():
            if isinstance(value, str | Path) and Path(value).is_file():
                taken[_identity(Path(value))] = f"{what} ({self.setting_name(*loc)})"
        for i, path, is_dir, where in self._sink_outputs():
            problem = _unwritable(path, is_dir)
            if problem:
                raise ConfigError(f"{where}: cannot write {path}: {problem}")
            folder = getattr(self.source, "input", None)
            if isinstance(folder, str | Path) and Path(folder).is_dir():
                inside = Path(folder).resolve()
                if inside == path.resolve() or inside in path.resolve().parents:
                    flag = self.setting_name("source", "input")
                    raise ConfigError(
                        f"{where}: {path} is in the source folder {folder} ({flag}); "
                        "the source reads that folder: write elsewhere"
                    )
            identity = _identity(path)
            if identity in taken:
                raise ConfigError(f"{where}: {path} is also {taken[identity]}; refusing to write to it")
            taken[identity] = f"the output of {self.setting_name('sinks', i)}"

    def _inputs(self) -> list[tuple[str, tuple[str, str], object]]:
        """``(what, key, value)`` of the files the daemon reads: model, source, labels."""
        return [
            ("the model file", ("model", "path"), self.model.path),
            ("the source file", ("source", "input"), getattr(self.source, "input", None)),
            ("the labels file", ("model", "labels"), self.model.labels),
        ]

    def _sink_outputs(self) -> list[tuple[int, Path, bool, str]]:
        """``(sink index, path, is a folder, where it was set)`` of every sink that writes files."""
        from edgecnn.sinks.snapshots import snapshot_directory

        outputs = []
        for i, sink in enumerate(self.sinks):
            kind = getattr(sink, "type", None)
            if kind == "jsonl" and sink.path != "-":
                outputs.append((i, Path(sink.path), False, self.where("sinks", i, "path")))
            elif kind == "snapshots":
                where = self.where("sinks", i, "directory") if sink.directory else self.where("sinks", i)
                outputs.append((i, snapshot_directory(sink, self.state_path), True, where))
            elif kind == "annotated":
                outputs.append((i, sink.directory, True, self.where("sinks", i, "directory")))
        return outputs

    def where(self, *loc: str | int) -> str:
        """Where a key was set, for messages: ``device.yaml:14: thresholds.person`` or ``--conf``."""
        return (self._origin or _Origin()).describe(loc)

    def setting_name(self, *loc: str | int) -> str:
        """What the user calls a setting, set or not: ``model.task`` in a file, ``--task`` for flags."""
        return (self._origin or _Origin()).name(loc)

    def resolve(self, spec: ModelSpec) -> PostSettings:
        """Thresholds with defaults from the model and label names turned into class ids.

        Raises:
            ConfigError: a label the model does not have, naming it, its line and the labels.
        """
        ids = {name: i for i, name in enumerate(spec.labels)}

        def class_id(name: str, *loc: str | int) -> int:
            if name not in ids:
                known = ", ".join(spec.labels[:20]) + (", ..." if len(spec.labels) > 20 else "")
                raise ConfigError(f"{self.where(*loc)}: unknown label {name!r}; the model's labels: {known}")
            return ids[name]

        def table(values: dict[str, float] | None, key: str) -> dict[int, float]:
            return {class_id(n, key, n): v for n, v in (values or {}).items() if n != "default"}

        thresholds, iou = self.thresholds or {}, self.iou or {}
        classes = tuple(class_id(n, "classes", i) for i, n in enumerate(self.classes)) or None
        if self.track is not None and spec.task != "detect":
            raise ConfigError(
                f"{self.where('track')}: tracking needs a detector; the model is a {spec.task} model"
            )
        for i, sink in enumerate(self.sinks):
            if getattr(sink, "per_object", False) and self.track is None:
                where = self.where("sinks", i, "per_object")
                raise ConfigError(f"{where}: per_object needs tracking on (track: true)")
            # a snapshot trigger the model never gives: no snapshot, ever
            for k, name in enumerate(getattr(sink, "labels", None) or ()):
                class_id(name, "sinks", i, "labels", k)
        return PostSettings(
            task=spec.task,
            conf=thresholds.get("default", spec.thresholds.conf),
            class_conf=table(self.thresholds, "thresholds"),
            iou=iou.get("default", spec.thresholds.iou),
            class_iou=table(self.iou, "iou"),
            classes=classes,
            agnostic=self.agnostic,
            max_det=self.max_det if self.max_det is not None else spec.thresholds.max_det,
            topk=self.topk,
            masks=tuple(tuple(polygon) for polygon in self.masks),
            zones=tuple((name, tuple(polygon)) for name, polygon in self.zones.items()),
            track=self.track,
        )


def _unwritable(path: Path, is_dir: bool) -> str | None:
    """Why a sink cannot create and write ``path`` (a file, or with ``is_dir`` a folder), or None.

    The folder that would hold the new files (``path`` itself when it is an existing folder,
    else its nearest existing parent) gets a temporary file created and deleted in it: the
    permission bits do not tell a read-only mount or ``/proc``.
    """
    if path.exists() and path.is_dir() != is_dir:
        return "it is a folder, not a file" if path.is_dir() else "it is a file, not a folder"
    if path.is_file() and not os.access(path, os.W_OK):
        return "the file cannot be written (read-only, or permission denied)"
    folder = path if path.is_dir() else next((p for p in path.parents if p.exists()), Path("."))
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    problem = creation_problem(folder)
    return f"cannot create files in {folder} ({problem})" if problem else None


def _identity(path: Path) -> tuple[object, ...]:
    """What tells one file apart from another: device and inode if it exists (links too),
    else its absolute path with symbolic links resolved."""
    try:
        st = path.stat()
    except OSError:
        return ("path", str(path.resolve()))
    return ("inode", st.st_dev, st.st_ino)


# -- where a value came from: YAML lines or command-line flags --------------------------------


class _Origin:
    """Names a key path for messages (config built in Python: the dotted path)."""

    def describe(self, loc: Sequence[str | int]) -> str:
        return ".".join(str(p) for p in loc) or "config"

    def name(self, loc: Sequence[str | int]) -> str:
        """What the user calls the setting: its dotted key path (a flag, for flags)."""
        return ".".join(str(p) for p in loc)


class _YamlOrigin(_Origin):
    """Maps key paths to ``file:line`` through the YAML node tree."""

    def __init__(self, path: str, root: yaml.Node) -> None:
        self.path = path
        self.root = root

    def describe(self, loc: Sequence[str | int]) -> str:
        line, dotted = _locate(self.root, loc)
        return f"{self.path}:{line}: {dotted}" if dotted else f"{self.path}:{line}"


class _FlagOrigin(_Origin):
    """Maps key paths to the command-line flags that set them."""

    def __init__(self, flags: Mapping[tuple[str, ...], str]) -> None:
        self.flags = flags

    def describe(self, loc: Sequence[str | int]) -> str:
        keys = tuple(str(p) for p in loc)
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.flags:
                return self.flags[keys[:n]]
        return super().describe(loc)

    def name(self, loc: Sequence[str | int]) -> str:
        return self.flags.get(tuple(str(p) for p in loc)) or super().name(loc)


def _locate(root: yaml.Node, loc: Sequence[str | int]) -> tuple[int, str]:
    """The line (1-based) and dotted path of ``loc`` in the YAML tree.

    Parts of ``loc`` that name no key (a union's tag, a type name) are left out; a last
    part missing from a mapping (a required key) is kept, on the mapping's line.
    """
    node, line, parts = root, root.start_mark.line + 1, []
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    parts.append(str(part))
                    break
            else:
                if i == len(loc) - 1 and str(part) != _type_of(node):  # not the mapping's own tag
                    parts.append(str(part))
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
            parts.append(str(part))
    return line, ".".join(parts)


def _type_of(node: yaml.MappingNode) -> str | None:
    """The ``type:`` value of a mapping (a source's or sink's union tag), if any."""
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "type" and isinstance(value, yaml.ScalarNode):
            return str(value.value)
    return None


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("model_type", "dict_type", "model_attributes_type"):  # pydantic names its classes here
        got = error.get("input")
        if got is None:
            return "expected keys indented under it, found none (check the indentation)"
        shown = repr(got) if isinstance(got, str | int | float | bool) else f"a {type(got).__name__}"
        return f"expected keys indented under it (key: value lines), found {shown}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("tag")
        expected = ctx.get("expected_tags", "")
        if tag is None:
            return f"missing 'type' (one of {expected})"
        reason = {**sources.failed(), **sinks.failed()}.get(str(tag))
        if reason:
            return f"type {tag!r} is not available: its plugin failed to import ({reason})"
        return f"unknown type {tag!r}; expected one of {expected}"
    return str(error["msg"]).removeprefix("Value error, ")


def config_error(exc: ValidationError, origin: _Origin) -> ConfigError:
    """One line for a validation error: where (file:line: key.path, or a flag), what, and how many more."""
    errors = exc.errors()
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"{origin.describe(first['loc'])}: {_message(first)}{more}")


def load_device_config(
    path: str | Path, *, unset_variables: Literal["error", "keep"] = "error"
) -> DeviceConfig:
    """Read and validate a device config file.

    ``${NAME}`` in a value is the environment variable ``NAME``, and ``~/`` at the start of a
    path is the home folder (see :func:`_expand`).

    Args:
        path: the YAML file.
        unset_variables: ``keep`` leaves ``${NAME}`` of an unset variable as written (``edgecnn
            package`` checks a board's config on a workstation without the board's environment).

    Raises:
        ConfigError: the file is missing or unreadable, not YAML, not a mapping, or invalid
            (one line naming the file, the line and the key path).
    """
    source = str(path)
    if not Path(path).exists():
        raise ConfigError(f"{source}: no such config file")
    try:
        text = read_text_input(path, "config", max_bytes=1 << 20)  # never a pipe or a device
    except UserError as exc:
        raise ConfigError(str(exc)) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        duplicate = duplicate_key(root)
        if duplicate:
            key, first, again = duplicate
            raise ConfigError(f"{source}:{again}: key {key!r} is set twice, on line {first} and line {again}")
        data = loader.construct_document(root) if root is not None else None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise ConfigError(f"{source}{f':{line}' if line else ''}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    if root is None or not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings (model:, source:, sinks: ...)")
    origin = _YamlOrigin(source, root)
    data = _expand(data, (), origin, unset_variables == "keep")
    try:
        config = DeviceConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, origin) from None
    config._origin = origin
    return config


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Keys whose values are file or folder paths: a leading ``~/`` there is the user's home.
_PATH_KEYS = frozenset(
    {"path", "input", "labels", "directory", "state_dir", "ca_file", "cert_file", "key_file"}
)


def _expand(value: Any, loc: tuple[str | int, ...], origin: _YamlOrigin, keep_unset: bool = False) -> Any:
    """``${NAME}`` in any string from the environment (secrets from systemd's
    ``EnvironmentFile=`` or ``LoadCredential=``, not from the file), and ``~/`` at the start
    of a path key from the home folder.

    Raises:
        ConfigError: ``${NAME}`` of a variable that is not set, naming the line and key.
    """
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, k), origin, keep_unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), origin, keep_unset) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            if keep_unset:
                return match.group(0)
            raise ConfigError(f"{origin.describe(loc)}: environment variable {name} is not set")
        return os.environ[name]

    if "${" in value:
        value = _ENV_REFERENCE.sub(variable, value)
    if loc and loc[-1] in _PATH_KEYS and (value == "~" or value.startswith("~/")):
        value = os.path.expanduser(value)
    return value


#: which flag of ``edgecnn run`` sets which key, for messages
FLAGS: dict[tuple[str, ...], str] = {
    ("model",): "--model",
    ("model", "path"): "--model",
    ("source", "input"): "--source",
    ("model", "num_threads"): "--threads",
    ("source",): "--source",
    ("thresholds",): "--conf",
    ("iou",): "--iou",
    ("classes",): "--classes",
    ("max_det",): "--max-det",
    ("sinks",): "--jsonl",
    ("sinks", "1"): "--save",
    ("track",): "--track",
    ("device",): "--device",
    **{("model", key): SETTING_FLAGS[key] for key in SPEC_KEYS},
}


def _parsed_flags(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Model settings from flags as the config's types: ``--strides 8,16`` and ``--mean
    0,0,0`` are lists there (the other flags' text is what the config takes as it is)."""
    out = {}
    for key, value in settings.items():
        if value is None:
            continue
        try:
            if key == "strides" and isinstance(value, str):
                value = parse_ints(value)
            elif key in ("mean", "std") and isinstance(value, str | int | float):
                value = list(parse_floats(value))
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{SETTING_FLAGS[key]}: {exc}") from None
        out[key] = value
    return out


def config_from_flags(
    model: str | Path,
    source: str,
    jsonl: str | None = None,
    conf: float | None = None,
    iou: float | None = None,
    classes: Sequence[str] | None = None,
    max_det: int | None = None,
    num_threads: int | None = None,
    model_settings: Mapping[str, Any] | None = None,
    save: str | Path | None = None,
    track: bool = False,
) -> DeviceConfig:
    """The config of ``edgecnn run --model M --source S [--jsonl F] [--save DIR] [--track] ...``
    (an OpenCV source; ``save`` adds an ``annotated`` sink, ``track`` turns tracking on).

    ``model_settings`` are the flags for a model without metadata (``model:`` keys,
    :data:`SPEC_KEYS`; None values are left out).

    Raises:
        ConfigError: one line naming the flag at fault (``--conf: Input should be ...``).
    """
    data: dict[str, Any] = {
        "model": {
            "path": str(model),
            **({"num_threads": num_threads} if num_threads is not None else {}),
            **_parsed_flags(model_settings or {}),
        },
        "source": {"type": "opencv", "input": int(source) if source.isdigit() else source},
        "sinks": [{"type": "jsonl", "path": jsonl or "-"}],
    }
    if save is not None:
        data["sinks"].append({"type": "annotated", "directory": str(save)})
    for key, value in (("thresholds", conf), ("iou", iou), ("max_det", max_det)):
        if value is not None:
            data[key] = value
    if classes:
        data["classes"] = list(classes)
    if track:
        data["track"] = {}
    origin = _FlagOrigin(FLAGS)
    try:
        config = DeviceConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, origin) from None
    config._origin = origin
    return config
