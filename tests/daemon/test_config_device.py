"""The device config: validation, errors naming the YAML line and key, thresholds resolved
against the model's labels, flags, the plugin registries, and docs that match the code."""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from edgecnn import sinks, sources
from edgecnn.config.device import (
    DeviceConfig,
    ModelSettings,
    TrackSettings,
    config_from_flags,
    load_device_config,
)
from edgecnn.errors import ConfigError
from edgecnn.plugins import Registry
from edgecnn.runtime.spec import InputSpec, ModelSpec, OutputSpec, ThresholdSpec
from edgecnn.sources.base import SourceSettings

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
model:
  path: m.tflite
source:
  type: opencv
  input: 0
"""

SPEC = ModelSpec(
    name="det",
    task="detect",
    labels=["person", "car", "dog"],
    input=InputSpec(width=64, height=64),
    output=OutputSpec(layout="yolo_v3", anchors=[[(10.0, 14.0)]], strides=[8]),
    thresholds=ThresholdSpec(conf=0.3, iou=0.6, max_det=77),
)


def _error(config_file: Callable[..., Path], text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_device_config(config_file(text))
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("extra", "line", "expected"),
    [
        (
            "thresholds:\n  default: 0.4\n  person: 1.5\n",
            8,
            "thresholds.person: Input should be less than or equal to 1",
        ),
        ("thresholds: -0.1\n", 6, "thresholds: Input should be greater than or equal to 0"),
        ("iou: {car: 0}\n", 6, "iou.car: Input should be greater than 0"),
        ("max_det: 0\n", 6, "max_det: Input should be greater than or equal to 1"),
        (
            "sinks:\n  - type: jsonl\n    backups: 2000\n",
            8,
            "sinks.0.backups: Input should be less than or equal to 1000",
        ),
        ("sinks:\n  - type: jsonl\n  - type: nosuch\n", 8, "sinks.1: unknown type 'nosuch'; expected one of"),
        ("sinks:\n  - path: x\n", 7, "sinks.0: missing 'type'"),
        (
            "sinks:\n  - type: jsonl\n  - type: http\n    host: 0.0.0.0\n",
            8,
            "sinks.1: refusing to serve on 0.0.0.0 without auth_token",
        ),
        ("colour: red\n", 6, "colour: unknown key"),
        ("device: 'my device'\n", 6, "device: String should match pattern"),
        ("sinks:\n  - jsonl\n", 7, "sinks.0: expected keys indented under it (key: value lines), found"),
        ("sinks:\n  - type: snapshots\n    labels:\n", 8, "sinks.0.labels: Input should be a valid list"),
        ("masks:\n  - [[0, 0], [1, 0]]\n", 6, "masks: a mask needs at least 3 points [x, y], got 2"),
        ("masks: [[[0, 0], [640, 0], [0, 480]]]\n", 6, "masks: a mask: points are fractions of the frame"),
        ("zones:\n  yard: [[0, 0], [1, 1]]\n", 6, "zones: zone 'yard' needs at least 3 points [x, y], got 2"),
        ("zones:\n  front yard: [[0, 0], [1, 0], [1, 1]]\n", 6, "zones: zone name 'front yard': use letters"),
        ("track:\n  min_hits: 0\n", 7, "track.min_hits: Input should be greater than or equal to 1"),
        ("track: {iou: 0}\n", 6, "track.iou: Input should be greater than 0"),
        ("track: {max_age: 3}\n", 6, "track.max_age: unknown key"),
    ],
)
def test_errors_name_the_line_and_the_key(
    config_file: Callable[..., Path], extra: str, line: int, expected: str
) -> None:
    message = _error(config_file, BASE + extra)
    assert message.startswith(f"{config_file('', 'unused.yaml').parent / 'device.yaml'}:{line}: {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: m.tflite\n", ":1: model: expected keys indented under it (key: value lines), found 'm."),
        ("model:\npath: m.tflite\n", ":1: model: expected keys indented under it, found none (check"),
    ],
    ids=["a string", "not indented"],
)
def test_a_section_without_its_keys_says_so(
    config_file: Callable[..., Path], text: str, expected: str
) -> None:
    # pydantic would say "Input should be a valid dictionary or instance of ModelSettings".
    with pytest.raises(ConfigError) as info:
        load_device_config(config_file(text + "source: {type: opencv, input: 0}\n"))
    assert expected in str(info.value)


def test_errors_inside_the_source_and_missing_keys(config_file: Callable[..., Path]) -> None:
    text = "model:\n  path: m.tflite\n  num_threads: 99\nsource:\n  type: opencv\n  input: 0\n"
    text += "  stall_timeout: 0\n"
    assert ":3: model.num_threads: Input should be less than or equal to 64 (and 1 more)" in _error(
        config_file, text
    )
    assert ":3: source.input: Field required" in _error(
        config_file, "model:\n  path: m\nsource:\n  type: opencv\n"
    )
    assert ":1: source: Field required" in _error(config_file, "model: {path: m}\n")
    assert ": invalid YAML:" in _error(config_file, "model: [\n")
    assert "expected a mapping" in _error(config_file, "- a\n- b\n")


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: no such config file$"):
        load_device_config(tmp_path / "nope.yaml")


def test_thresholds_default_to_the_models_and_override_per_class(config_file: Callable[..., Path]) -> None:
    plain = load_device_config(config_file(BASE)).resolve(SPEC)
    assert (plain.conf, plain.iou, plain.max_det, plain.class_conf, plain.classes) == (0.3, 0.6, 77, {}, None)
    text = (
        BASE + "thresholds: {default: 0.4, dog: 0.7}\niou: {car: 0.2}\nclasses: [dog, person]\nmax_det: 5\n"
    )
    settings = load_device_config(config_file(text)).resolve(SPEC)
    assert settings.conf == 0.4 and settings.class_conf == {2: 0.7}
    assert settings.iou == 0.6 and settings.class_iou == {1: 0.2}
    assert settings.classes == (2, 0) and settings.max_det == 5
    assert settings.min_conf == 0.4  # person (0.4) is the lowest of the kept classes
    number = load_device_config(config_file(BASE + "thresholds: 0.55\niou: 0.5\n")).resolve(SPEC)
    assert (number.conf, number.iou) == (0.55, 0.5)


@pytest.mark.parametrize(
    ("extra", "line", "key"),
    [
        ("thresholds: {persn: 0.5}\n", 6, "thresholds.persn"),
        ("iou:\n  default: 0.5\n  cat: 0.5\n", 8, "iou.cat"),
        ("classes:\n  - person\n  - horse\n", 8, "classes.1"),
        ("sinks:\n  - type: snapshots\n    labels: [car, persn]\n", 8, "sinks.0.labels.1"),
    ],
)
def test_unknown_labels_are_named(config_file: Callable[..., Path], extra: str, line: int, key: str) -> None:
    config = load_device_config(config_file(BASE + extra))
    with pytest.raises(ConfigError) as info:
        config.resolve(SPEC)
    name = {"classes.1": "horse", "sinks.0.labels.1": "persn"}.get(key, key.split(".")[-1])
    assert str(info.value) == (
        f"{config_file('', 'x').parent / 'device.yaml'}:{line}: {key}: unknown label {name!r}; "
        "the model's labels: person, car, dog"
    )


def test_environment_variables_and_home_in_values(
    config_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Secrets from systemd's EnvironmentFile=, not from the file; ~/ in paths is the home folder.
    monkeypatch.setenv("MQTT_PASSWORD", "s3cret")
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setenv("HOME", "/home/pi")
    text = BASE.replace("path: m.tflite", "path: ~/models/m.tflite") + (
        "sinks:\n"
        "  - {type: mqtt, host: localhost, username: cam, password: '${MQTT_PASSWORD}'}\n"
        "  - {type: jsonl, path: '${OUT}/d.jsonl'}\n"
        "  - {type: snapshots, directory: ~/snaps, labels: ['~/x']}\n"
    )
    config = load_device_config(config_file(text))
    assert config.model.path == Path("/home/pi/models/m.tflite")
    mqtt, jsonl, snapshots = config.sinks
    assert mqtt.password.get_secret_value() == "s3cret" and jsonl.path == f"{tmp_path}/d.jsonl"
    assert snapshots.directory == Path("/home/pi/snaps") and snapshots.labels == ["~/x"]  # a label, no path
    monkeypatch.delenv("MQTT_PASSWORD")
    with pytest.raises(ConfigError) as info:
        load_device_config(config_file(text))
    assert str(info.value).endswith(":7: sinks.0.password: environment variable MQTT_PASSWORD is not set")
    kept = load_device_config(config_file(text), unset_variables="keep")  # what package checks
    assert kept.sinks[0].password.get_secret_value() == "${MQTT_PASSWORD}"


def test_tracking_is_off_by_default_true_or_a_mapping_turns_it_on(config_file: Callable[..., Path]) -> None:
    assert load_device_config(config_file(BASE)).resolve(SPEC).track is None
    assert load_device_config(config_file(BASE + "track: false\n")).resolve(SPEC).track is None
    on = load_device_config(config_file(BASE + "track: true\n")).resolve(SPEC).track
    assert on is not None and (on.iou, on.max_lost_s, on.min_hits, on.zone_hits) == (0.3, 2.0, 2, 3)
    tuned = load_device_config(config_file(BASE + "track: {max_lost_s: 5, min_hits: 3}\n"))
    tuned = tuned.resolve(SPEC).track
    assert tuned is not None and (tuned.iou, tuned.max_lost_s, tuned.min_hits) == (0.3, 5.0, 3)
    assert config_from_flags("m.tflite", "0", track=True).resolve(SPEC).track == on
    assert config_from_flags("m.tflite", "0").resolve(SPEC).track is None
    classifier = SPEC.model_copy(update={"task": "classify"})
    config = load_device_config(config_file(BASE + "\ntrack: true\n"))
    with pytest.raises(ConfigError) as info:
        config.resolve(classifier)
    assert str(info.value) == (
        f"{config_file('', 'x').parent / 'device.yaml'}:7: track: tracking needs a detector; "
        "the model is a classify model"
    )
    with pytest.raises(ConfigError, match=r"^--track: tracking needs a detector"):
        config_from_flags("m.tflite", "0", track=True).resolve(classifier)
    # snapshots per object need the objects' ids
    sinks = "sinks:\n  - type: snapshots\n    per_object: true\n"
    with pytest.raises(ConfigError, match=r"device.yaml:8: sinks.0.per_object: per_object needs tracking on"):
        load_device_config(config_file(BASE + sinks)).resolve(SPEC)
    assert load_device_config(config_file(BASE + "track: true\n" + sinks)).resolve(SPEC).track is not None


def test_per_class_iou_needs_class_aware_nms(config_file: Callable[..., Path]) -> None:
    assert "per-class iou values need agnostic: false" in _error(
        config_file, BASE + "agnostic: true\niou: {car: 0.3}\n"
    )


def test_flags_are_named_in_errors() -> None:
    with pytest.raises(ConfigError, match=r"^--conf: Input should be less than or equal to 1$"):
        config_from_flags("m.tflite", "clip.mp4", conf=1.5)
    with pytest.raises(ConfigError, match=r"^--threads: Input should be greater than or equal to 1$"):
        config_from_flags("m.tflite", "clip.mp4", num_threads=0)
    config = config_from_flags("m.tflite", "0", jsonl="out.jsonl", classes=["car"], iou=0.3)
    assert config.source.input == 0 and config.sinks[0].path == "out.jsonl"
    with pytest.raises(ConfigError, match=r"^--classes: unknown label 'car'"):
        config.resolve(SPEC.model_copy(update={"labels": ["person", "bus", "dog"]}))


@pytest.mark.parametrize(
    ("extra", "line", "expected"),
    [
        ("thresholds: .nan\n", 6, "thresholds: Input should be a finite number"),
        ("iou: {car: .inf}\n", 6, "iou.car: Input should be a finite number"),
        ("stop_timeout: .nan\n", 6, "stop_timeout: Input should be a finite number"),
        ("  fps: .nan\n", 6, "source.fps: Input should be a finite number"),
        ("sinks:\n  - type: snapshots\n    min_interval_s: .nan\n", 8,
         "sinks.0.min_interval_s: Input should be a finite number"),
        (
            "sinks:\n  - type: http\n    stream_fps: .inf\n",
            8,
            "sinks.0.stream_fps: Input should be a finite number",
        ),
    ],
)
def test_numbers_must_be_finite(
    config_file: Callable[..., Path], extra: str, line: int, expected: str
) -> None:
    """NaN passes every bound (all comparisons are false), so it is refused by name."""
    assert _error(config_file, BASE + extra).endswith(f"device.yaml:{line}: {expected}")


def test_flags_must_be_finite() -> None:
    with pytest.raises(ConfigError, match=r"^--conf: Input should be a finite number$"):
        config_from_flags("m.tflite", "clip.mp4", conf=float("nan"))
    with pytest.raises(ConfigError, match=r"^--iou: Input should be a finite number$"):
        config_from_flags("m.tflite", "clip.mp4", iou=float("inf"))
    with pytest.raises(ConfigError, match=r"^--mean: Input should be a finite number$"):
        config_from_flags("m.tflite", "clip.mp4", model_settings={"mean": [float("nan")]})


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's folder as the working directory, with a model, a video, labels and a plain file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    for name in ("m.tflite", "clip.mp4", "labels.txt", "afile"):
        (tmp_path / name).write_text(name)
    return tmp_path


@pytest.mark.parametrize(
    ("jsonl", "expected"),
    [
        ("afile/x.jsonl", "cannot write afile/x.jsonl: afile is a file, not a folder"),
        ("afile/deeper/x.jsonl", "cannot write afile/deeper/x.jsonl: afile is a file, not a folder"),
        (".", "cannot write .: it is a folder, not a file"),
        ("m.tflite", "m.tflite is also the model file (--model); refusing to write to it"),
        ("./sub/../m.tflite", "sub/../m.tflite is also the model file (--model); refusing to write to it"),
        ("link.tflite", "link.tflite is also the model file (--model); refusing to write to it"),
        ("clip.mp4", "clip.mp4 is also the source file (--source); refusing to write to it"),
        (
            "frames/out.jsonl",
            "frames/out.jsonl is in the source folder frames (--source); the source reads that folder: "
            "write elsewhere",
        ),
    ],
)
def test_outputs_from_flags_that_cannot_work(workdir: Path, jsonl: str, expected: str) -> None:
    (workdir / "sub").mkdir()
    (workdir / "frames").mkdir()
    (workdir / "link.tflite").symlink_to(workdir / "m.tflite")
    source = "frames" if jsonl.startswith("frames/") else "clip.mp4"
    config = config_from_flags("m.tflite", source, jsonl=jsonl)
    with pytest.raises(ConfigError) as info:
        config.check_outputs()
    assert str(info.value) == f"--jsonl: {expected}"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("sinks:\n  - {type: snapshots, directory: afile}\n",
         ":5: sinks.0.directory: cannot write afile: it is a file, not a folder"),
        ("sinks:\n  - {type: snapshots}\nstate_dir: afile\n",
         ":5: sinks.0: cannot write afile/snapshots: afile is a file, not a folder"),
        ("sinks:\n  - {type: http, port: 8081}\n  - {type: http, port: 8081}\n",
         ":6: sinks.1.port: port 8081 is taken by the http sink sinks.0"),
        (
            "sinks:\n  - {type: http}\n  - {type: http}\n",
            ":6: sinks.1.port: port 8080 is taken by the http sink sinks.0",
        ),
        ("sinks:\n  - {type: jsonl, path: out.jsonl}\n  - {type: jsonl, path: ./out.jsonl}\n",
         ":6: sinks.1.path: out.jsonl is also the output of sinks.0; refusing to write to it"),
        ("sinks:\n  - {type: jsonl, path: labels.txt}\n  labels: labels.txt\n",
         ":6: sinks.0.path: labels.txt is also the labels file (model.labels); refusing to write to it"),
    ],
)
def test_outputs_in_a_config_that_cannot_work(
    workdir: Path, config_file: Callable[..., Path], extra: str, expected: str
) -> None:
    labels = "  labels: labels.txt\n" if "labels:" in extra else ""
    text = "source: {type: opencv, input: clip.mp4}\nmodel:\n  path: m.tflite\n" + labels
    path = config_file(text + extra.replace(labels, ""))
    with pytest.raises(ConfigError) as info:
        load_device_config(path).check_outputs()
    assert str(info.value) == f"{path}{expected}"


def test_outputs_that_work_pass(workdir: Path) -> None:
    config = config_from_flags("m.tflite", "clip.mp4", jsonl="new/folder/out.jsonl")
    config.check_outputs()
    config_from_flags("m.tflite", "0", jsonl="-").check_outputs()
    ports_zero = DeviceConfig.model_validate(
        {
            "model": {"path": "m.tflite"},
            "source": {"type": "opencv", "input": 0},
            "sinks": [{"type": "http", "port": 0}, {"type": "http", "port": 0}, {"type": "snapshots"}],
        }
    )
    ports_zero.check_outputs()


def test_the_example_config_validates() -> None:
    text = (ROOT / "deploy" / "config" / "device.example.yaml").read_text()
    missing = {t for t in re.findall(r"type: (\w+)", text)} - set(sources.plugins()) - set(sinks.plugins())
    if missing:
        pytest.skip(f"plugins not available here: {missing}")
    config = load_device_config(ROOT / "deploy" / "config" / "device.example.yaml")
    assert config.source.type == "picamera2" and config.thresholds == {"default": 0.4}
    assert str(config.model.path) == "/opt/edgecnn/current/model.tflite"
    # `edgecnn package` ships it with any model: it must name no label a model may lack.
    settings = config.resolve(SPEC.model_copy(update={"labels": ["only_label"]}))
    assert (settings.conf, settings.class_conf, settings.classes) == (0.4, {}, None)


class _BrokenPlugin(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``edgecnn.sinks.broken`` a module that fails to import, as one whose optional
    dependency is missing."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(name, self) if name == "edgecnn.sinks.broken" else None

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        raise ModuleNotFoundError("No module named 'nosuchdep'", name="nosuchdep")


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, config_file: Callable[..., Path]
) -> None:
    monkeypatch.setattr(sys, "meta_path", [_BrokenPlugin(), *sys.meta_path])
    registry = Registry("sink", "edgecnn.sinks", (*sinks.PLUGINS, "broken"), sinks._builder)
    monkeypatch.setattr(sinks, "_registry", registry)
    assert "jsonl" in sinks.plugins()
    assert sinks.failed() == {"broken": "ModuleNotFoundError: No module named 'nosuchdep'"}
    message = _error(config_file, BASE + "sinks:\n  - type: broken\n")
    assert message.endswith(
        ":7: sinks.0: type 'broken' is not available: its plugin failed to import "
        "(ModuleNotFoundError: No module named 'nosuchdep')"
    )


# -- docs/daemon.md lists every key with its default and bounds --------------------------------

DOCUMENTED: list[tuple[str, type[BaseModel], tuple[str, ...]]] = [
    ("### Top level", DeviceConfig, ()),
    ("### `model`", ModelSettings, ()),
    ("### `track`", TrackSettings, ()),
    ("### Every source", SourceSettings, ()),
    ("### `source` type `opencv`", sources.plugins()["opencv"].config, tuple(SourceSettings.model_fields)),
    (
        "### `source` type `picamera2`",
        sources.plugins()["picamera2"].config,
        tuple(SourceSettings.model_fields),
    ),
    *[(f"### `sinks` type `{key}`", plugin.config, ()) for key, plugin in sorted(sinks.plugins().items())],
]


def _section(docs: str, heading: str) -> str:
    start = docs.index(heading + "\n")
    end = docs.find("\n### ", start + 1)
    return docs[start : end if end > 0 else None]


@pytest.mark.parametrize(("heading", "cls", "skip"), DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_docs_list_every_key_with_its_default_and_bounds(
    heading: str, cls: type[BaseModel], skip: tuple[str, ...]
) -> None:
    docs = (ROOT / "docs" / "daemon.md").read_text()
    assert heading + "\n" in docs, f"docs/daemon.md has no section {heading!r}"
    section = _section(docs, heading)
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        row = next((line for line in section.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"{heading}: no row for `{name}`"
        cells = [c.strip() for c in row.strip("|").split("|")]
        if field.is_required():
            assert cells[1] == "required", f"{heading} `{name}`: default should read 'required'"
        elif field.default_factory is None:
            assert cells[1] == f"`{json.dumps(to_jsonable_python(field.default))}`", f"{heading} `{name}`"
        for meta in field.metadata:
            for attr in ("ge", "gt", "le", "lt"):
                value = getattr(meta, attr, None)
                if value is not None:
                    text = f"{value:g}" if isinstance(value, float) else str(value)
                    assert re.search(rf"(^|[^\d.]){re.escape(text)}($|[^\d.])", cells[2]), (
                        f"{heading} `{name}`: bound {attr} {text} missing from {cells[2]!r}"
                    )
