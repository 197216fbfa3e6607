"""``edgecnn package``: one ``.tar.gz`` with everything a board needs to run a model offline.

Layout (one top-level directory ``NAME-VERSION-ARCH/``)::

    install.py                       the installer (standard library only), run as root
    manifest.json                    name, version, target, model spec, sha256 of every file
    model.tflite                     the model, with its edgecnn metadata (embedded here if needed)
    config/device.yaml               the device config (given, or the example) -> /etc/edgecnn
    systemd/edgecnn-detect.service   the unit -> /etc/systemd/system
    requirements.txt                 every wheel, pinned with --hash=sha256
    wheels/*.whl                     the board's dependencies for its CPU and Python, and edgecnn
    README.txt                       how to install

The board reads the model's settings from its edgecnn metadata, so the bundled model always
carries it (:func:`bundled_model`): a model from ``edgecnn quantize`` is bundled as it is; an
Ultralytics export's settings (from the metadata its exporter appends), or the spec flags
``edgecnn run`` takes for a model without metadata, are embedded into a copy, which is what the
bundle holds and what the manifest's sha256 is of.

Everything is checked before anything is written: the model parses, carries a spec that fits
its tensors and loads in a child process; every operator is available in the target runtime
(:mod:`edgecnn.package.ops`); the runtime has wheels for the target Python; the config is
valid. The archive is reproducible: entries sorted, owner root, fixed modes and mtimes, gzip
without a timestamp; with ``SOURCE_DATE_EPOCH`` set (it also fixes ``created``) the same
inputs give the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

import edgecnn
from edgecnn.digest import sha256_file
from edgecnn.errors import ConfigError, EdgecnnError, ModelError, UserError
from edgecnn.inputs import read_text_input
from edgecnn.outputs import check_output
from edgecnn.package import install as installer
from edgecnn.package.manifest import BOARD_MODEL_PATH, build_manifest, model_summary
from edgecnn.package.ops import check_model_ops
from edgecnn.package.wheelhouse import (
    SOURCE_DATE_EPOCH,
    Log,
    Target,
    Wheel,
    build_edgecnn_wheel,
    fetch_wheels,
    parse_wheel_name,
    requirements_txt,
    source_tree,
)
from edgecnn.quantize.metadata_writer import embed_spec
from edgecnn.runtime.flatbuffer import TFLiteFile
from edgecnn.runtime.metadata import FROM_EDGECNN, carried_spec, open_model_file, parse_model_file
from edgecnn.runtime.resolve import SETTING_FLAGS, MissingSettingsError, join_names, resolve_spec
from edgecnn.runtime.spec import ModelSpec
from edgecnn.yamlcheck import yaml_problem

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
EXAMPLE_CONFIG = Path("deploy/config/device.example.yaml")
UNIT_FILE = Path("deploy/systemd/edgecnn-detect.service")

README = """\
edgecnn bundle {name} {version} for {target}

Install on the board (as root; nothing is downloaded, every file is checked first):

    sudo python3 install.py            # add --enable --start to run the service now

See manifest.json for the model, the target and the sha256 of every file, and
python3 install.py --help for the options.
"""


@dataclass
class BundleResult:
    """What :func:`package_model` wrote."""

    path: Path
    manifest: dict[str, Any]
    size: int
    wheels: list[Wheel]
    wheels_from_cache: bool
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    """One file of the archive: its content (bytes or a file to read) and mode."""

    name: str
    data: bytes | Path
    mode: int = 0o644

    def sha256(self) -> str:
        if isinstance(self.data, Path):
            return sha256_file(self.data)
        return hashlib.sha256(self.data).hexdigest()

    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)


@dataclass(frozen=True)
class BundledModel:
    """The model as the bundle holds it (:func:`bundled_model`).

    Attributes:
        spec: the spec the board runs it with (its edgecnn metadata in the bundled file).
        data: the bytes to bundle, with ``spec`` embedded; None: the file as it is (it already
            carries exactly this spec as edgecnn metadata).
        parsed: the parsed flatbuffer (the tensors).
        origin: where the spec came from, for the log: ``edgecnn metadata``, ``Ultralytics
            metadata (metadata.json)``, ``flags``, or one of the first two ``with --labels, ...``.
    """

    spec: ModelSpec
    data: bytes | None
    parsed: TFLiteFile
    origin: str


def bundled_model(model: str | Path, settings: Mapping[str, Any] | None = None) -> BundledModel:
    """The model file to bundle, carrying its spec as edgecnn metadata.

    A model with edgecnn metadata and no ``settings`` is bundled unchanged. Otherwise the spec
    is embedded into a copy (:func:`~edgecnn.quantize.metadata_writer.embed_spec`; the rest of
    the file, an Ultralytics export's appended metadata archive included, follows unchanged): the
    one its Ultralytics metadata gives, or the one ``settings`` give a model without metadata,
    with ``settings`` applied in either case, as ``edgecnn run --model`` applies its flags
    (:func:`~edgecnn.runtime.resolve.resolve_spec`). So the board reads the spec checked here
    from the model's own edgecnn metadata, however its edgecnn reads Ultralytics metadata.

    Args:
        model: the ``.tflite`` file.
        settings: :func:`~edgecnn.runtime.resolve.resolve_spec` keywords (the spec flags of
            ``edgecnn run``: ``task``, ``labels``, ``imgsz``, ``anchors``, ...); None values
            are ignored.

    Raises:
        ModelError: unreadable model, invalid metadata, a spec that does not fit its tensors,
            or no metadata and required settings missing (one line naming the flags to pass).
        ConfigError: an invalid setting.
    """
    source = str(model)
    given = {key: value for key, value in (settings or {}).items() if value is not None}
    with open_model_file(model) as data:
        parsed = parse_model_file(data, source)
        carried, origin = carried_spec(data, parsed, source)
        if carried is not None and not given:
            if origin == FROM_EDGECNN:
                return BundledModel(carried, None, parsed, origin)
            spec = carried  # an Ultralytics export's, as edgecnn run takes it
        else:
            spec = _apply_settings(carried, given, parsed, source)
        try:
            copy = embed_spec(data, spec)
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None
    flags = ", ".join(SETTING_FLAGS[key] for key in given)
    origin = f"{origin} with {flags}" if origin and flags else origin or "flags"
    return BundledModel(spec, copy, parse_model_file(copy, source), origin)


def _apply_settings(
    carried: ModelSpec | None, given: Mapping[str, Any], parsed: TFLiteFile, source: str
) -> ModelSpec:
    """:func:`~edgecnn.runtime.resolve.resolve_spec` against the model's tensors; a missing
    setting names the flags and says what they are for here."""
    inputs = [t.shape for t in parsed.main.input_tensors]
    try:
        return resolve_spec(
            carried,
            **given,
            input_shape=inputs[0] if len(inputs) == 1 else None,
            output_shapes=[t.shape for t in parsed.main.output_tensors],
            source=source,
        )
    except MissingSettingsError as exc:
        flags = join_names(SETTING_FLAGS[key] for key in exc.missing)
        raise ModelError(
            f"{source} has no edgecnn or Ultralytics metadata: pass {flags} (edgecnn run's model "
            "flags) to embed them in the bundled copy; Ultralytics exports and edgecnn quantize "
            "outputs carry their own"
        ) from None


@contextmanager
def _file_to_check(model: Path, data: bytes | None) -> Iterator[Path]:
    """The model file the checks read: ``model`` itself, or a temporary copy holding ``data``
    (the bundled bytes), removed afterwards. Errors about the copy name ``model``."""
    if data is None:
        yield model
        return
    with tempfile.TemporaryDirectory(prefix="edgecnn-package-") as tmp:
        copy = Path(tmp) / model.name
        copy.write_bytes(data)
        try:
            yield copy
        except (ModelError, ConfigError) as exc:
            if str(copy) not in str(exc):
                raise
            kind = ConfigError if isinstance(exc, ConfigError) else ModelError
            raise kind(str(exc).replace(str(copy), f"{model} (its bundled copy)")) from None


def _check_name(value: str, what: str) -> str:
    if not SAFE_NAME.fullmatch(value):
        raise UserError(f"{what} {value!r}: use letters, digits and . _ + - (it becomes a directory name)")
    return value


def adjust_config(text: str, model_path: str = BOARD_MODEL_PATH, source: str = "config") -> str:
    """Point the device config's model at the bundled model, keeping comments and layout.

    Handles ``model: PATH`` and ``model: {path: PATH, ...}`` (block style); anything else is
    rewritten with PyYAML (comments lost).

    Raises:
        ConfigError: not YAML, or not a mapping.
    """
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:  # one line, as edgecnn run reports it
        line, problem = yaml_problem(exc)
        raise ConfigError(f"{source}{f':{line}' if line else ''}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings (model:, source:, sinks: ...)")
    lines = text.splitlines()
    top = next((i for i, line in enumerate(lines) if re.match(r"model:(\s|$)", line)), None)
    block = top is not None and re.fullmatch(r"model:\s*(#.*)?", lines[top]) is not None
    if isinstance(data.get("model"), dict) and block:
        end = next((j for j in range(top + 1, len(lines)) if re.match(r"\S", lines[j])), len(lines))
        child = next((j for j in range(top + 1, end) if re.match(r"\s+path:", lines[j])), None)
        if child is not None:
            indent = re.match(r"\s+", lines[child]).group(0)
            comment = re.search(r"\s+#.*$", lines[child])
            lines[child] = f"{indent}path: {model_path}" + (comment.group(0) if comment else "")
        else:
            first = next((j for j in range(top + 1, end) if lines[j].strip()), None)
            indent = re.match(r"\s*", lines[first]).group(0) if first is not None else "  "
            lines.insert(top + 1, f"{indent or '  '}path: {model_path}")
    elif top is not None and not isinstance(data.get("model"), dict):
        comment = re.search(r"\s+#.*$", lines[top])
        lines[top] = f"model: {model_path}" + (comment.group(0) if comment else "")
    elif top is None:
        lines += ["model:", f"  path: {model_path}"]
    # else a flow-style mapping: the check below falls back to PyYAML
    adjusted = "\n".join(lines) + "\n"
    try:
        got = yaml.safe_load(adjusted).get("model")
    except (yaml.YAMLError, AttributeError):
        got = None
    if (got.get("path") if isinstance(got, dict) else got) != model_path:
        model = data.get("model")
        data["model"] = {**model, "path": model_path} if isinstance(model, dict) else {"path": model_path}
        adjusted = yaml.safe_dump(data, sort_keys=False)
    return adjusted


def validate_config(text: str, source: str, model: Path | None = None) -> None:
    """Validate a device config with the daemon's schema (when this edgecnn has one), and with
    ``model`` given, as the daemon will resolve it against that model: its ``model:`` settings
    applied to the model's spec, and every label in ``thresholds``, ``iou`` and ``classes``
    one the model has; sinks must not collide (a port, a path). (A config that fails here
    would make the service exit 2 on the board.)

    Raises:
        ConfigError, ModelError: one line naming the key at fault.
    """
    try:
        from edgecnn.config.device import load_device_config
        from edgecnn.daemon.startup import load_spec
    except ImportError:  # an edgecnn without the daemon: nothing to validate against
        return
    with tempfile.TemporaryDirectory(prefix="edgecnn-config-") as tmp:
        path = Path(tmp) / "device.yaml"
        path.write_text(text)
        try:
            device = load_device_config(path, unset_variables="keep")  # set on the board, not here
            device.check_sinks_apart()
            if model is not None:
                local = device.model_copy(update={"model": device.model.model_copy(update={"path": model})})
                local.resolve(load_spec(local))
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(path), source)) from None


def _check_wheel_file(wheel: Path) -> None:
    """Refuse a ``--edgecnn-wheel`` that is missing, misnamed or not a zip archive (exit 2)."""
    if not wheel.is_file():
        raise UserError(f"--edgecnn-wheel {wheel}: no such file")
    try:
        project, _ = parse_wheel_name(wheel.name)
    except EdgecnnError as exc:
        raise UserError(f"--edgecnn-wheel {exc}") from None
    if project != "edgecnn":
        raise UserError(f"--edgecnn-wheel {wheel}: a wheel of {project!r}, not of edgecnn")
    if not zipfile.is_zipfile(wheel):
        raise UserError(f"--edgecnn-wheel {wheel}: not a wheel (not a zip archive)")


def _names_a_folder(out: str | Path | None) -> bool:
    """Whether ``--out`` is a folder for the default archive name (default ``dist/``): an existing
    folder, or a new name not ending in ``.tar.gz`` or ``.tgz``. (A trailing ``/`` cannot tell:
    ``Path`` and Typer drop it, and ``--out dist/new/`` must not write a file called ``new``.)"""
    if out is None:
        return True
    if Path(out).exists():
        return Path(out).is_dir()
    return not str(out).endswith((".tar.gz", ".tgz"))


def _find(relative: Path, what: str, flag: str) -> Path:
    root = source_tree()
    if root is None or not (root / relative).is_file():
        raise UserError(f"the default {what} ({relative}) is not available here: pass {flag}")
    return root / relative


def _created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_tar(out: Path, top: str, entries: list[_Entry]) -> None:
    """A reproducible ``.tar.gz``: sorted entries with parent directories, fixed metadata."""
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH))
    dirs = {top}
    for entry in entries:
        parts = entry.name.split("/")[:-1]
        dirs.update(f"{top}/{'/'.join(parts[: i + 1])}" for i in range(len(parts)))

    def info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.mtime = kind, mode, size, mtime
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    members: list[tuple[str, _Entry | None]] = [(d, None) for d in dirs]
    members += [(f"{top}/{e.name}", e) for e in entries]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    # Private to its owner (0600, whatever the umask): the device config in it may hold an MQTT
    # password. O_EXCL: never write through a file or link someone else left at that name.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, entry in sorted(members, key=lambda m: m[0]):
                if entry is None:
                    tar.addfile(info(name, tarfile.DIRTYPE, 0o755))
                    continue
                ti = info(name, tarfile.REGTYPE, entry.mode, entry.size())
                if isinstance(entry.data, Path):
                    with entry.data.open("rb") as handle:
                        tar.addfile(ti, handle)
                else:
                    tar.addfile(ti, io.BytesIO(entry.data))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def package_model(
    model: str | Path,
    target: Target | None = None,
    out: str | Path | None = None,
    config: str | Path | None = None,
    name: str | None = None,
    version: str | None = None,
    cache_dir: Path | None = None,
    refresh: bool = False,
    edgecnn_wheel: str | Path | None = None,
    unit: str | Path | None = None,
    validate: bool = True,
    log: Log | None = None,
    spec_settings: Mapping[str, Any] | None = None,
) -> BundleResult:
    """Build an offline installation bundle for a model and a board.

    Args:
        model: the ``.tflite`` model: with edgecnn metadata (``edgecnn quantize`` writes it),
            an Ultralytics export (its metadata gives the spec), or any model with
            ``spec_settings``. The bundle holds it with its spec embedded
            (:func:`bundled_model`).
        target: the board (default: arm64, CPython 3.11, ai-edge-litert).
        out: the archive to write (a name ending in ``.tar.gz`` or ``.tgz``), or else a
            directory for the default name ``NAME-VERSION-ARCH.tar.gz`` (default: ``dist/``).
        config: the device config; default ``deploy/config/device.example.yaml``. Its model
            path is set to the bundled model's path on the board.
        name: bundle name (default: the spec's name, else the model file's stem).
        version: release version (default: edgecnn's version and a digest of the content, so
            different content never shares a release directory on the board).
        cache_dir: the wheel cache (default ``~/.cache/edgecnn/wheels``).
        refresh: download the wheels again even when cached.
        edgecnn_wheel: use this edgecnn wheel instead of building one from the source tree.
        unit: the systemd unit (default ``deploy/systemd/edgecnn-detect.service``).
        validate: also load and run the model once in a child process here.
        log: progress lines.
        spec_settings: model settings (the spec flags of ``edgecnn run``, as
            :func:`~edgecnn.runtime.resolve.resolve_spec` keywords), required for a model
            without metadata and overriding what metadata gives; embedded in the bundled copy.

    Returns:
        A :class:`BundleResult`.

    Raises:
        UnsupportedOpError: an operator the target runtime lacks (named); nothing is written.
        ModelError: unreadable model, no spec (and no ``spec_settings``), or a spec that does
            not fit it.
        ConfigError: invalid device config.
        UserError: no wheels for the target, bad name or version.
        EdgecnnError: pip failed.
    """
    log = log or (lambda line: None)
    target = target or Target()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    model = Path(model)
    target.check()

    runtime = target.release
    ops = check_model_ops(model, runtime.name, runtime.version)  # logged once every input is checked
    bundled = bundled_model(model, spec_settings)
    spec, parsed = bundled.spec, bundled.parsed
    name = _check_name(name or (spec.name if spec.name != "model" else model.stem), "name")

    config_path = Path(config) if config is not None else _find(EXAMPLE_CONFIG, "device config", "--config")
    config_text = read_text_input(config_path, "--config", max_bytes=1 << 20)
    adjusted = adjust_config(config_text, BOARD_MODEL_PATH, str(config_path))
    # Errors name lines of the user's file: check it as written unless it lacks the model path.
    model_entry = yaml.safe_load(config_text).get("model")
    has_path = isinstance(model_entry, str) or (isinstance(model_entry, dict) and "path" in model_entry)
    with _file_to_check(model, bundled.data) as checked:  # what the board gets
        if validate:
            from edgecnn.runtime.validate import validate_model

            validate_model(checked, expect_spec=True)
        validate_config(config_text if has_path else adjusted, str(config_path), checked)
    config_text = adjusted
    unit_path = Path(unit) if unit is not None else _find(UNIT_FILE, "systemd unit", "--unit")
    if not unit_path.is_file():
        raise UserError(f"{unit_path}: no such unit file")
    if edgecnn_wheel is not None:
        _check_wheel_file(Path(edgecnn_wheel))
    if _names_a_folder(out):
        check_output(Path(out or "dist"), "--out", "dir")
    else:
        labels = (spec_settings or {}).get("labels")  # a labels.txt, or 'a,b,c'
        check_output(Path(out), "--out", "file", (model, config_path, unit_path, edgecnn_wheel, labels))
    log(f"operators: {', '.join(op.name for op in ops)}: all available in {runtime.name} {runtime.version}")
    if bundled.data is not None:
        log(f"spec: {bundled.origin}, embedded in the bundled copy of {model} as edgecnn metadata")
    if not any(t.dtype in ("int8", "uint8") for t in parsed.main.tensors):
        log(
            f"note: {model} is not quantised (no int8 tensors): it runs on the board, but several "
            "times slower than an int8 model; edgecnn quantize makes one"
        )
    timings["checks"] = round(time.perf_counter() - started, 2)

    step = time.perf_counter()
    house = fetch_wheels(target, cache_dir, refresh, log)
    timings["wheels"] = round(time.perf_counter() - step, 2)
    step = time.perf_counter()
    own = Path(edgecnn_wheel) if edgecnn_wheel is not None else build_edgecnn_wheel(cache_dir, log=log)
    timings["edgecnn_wheel"] = round(time.perf_counter() - step, 2)
    wheels = [*house.wheels, Wheel.from_file(own)]
    wheel_paths = [*house.paths(), own]

    step = time.perf_counter()
    install_py = Path(installer.__file__).read_bytes()
    model_file = _Entry(installer.MODEL, model if bundled.data is None else bundled.data)
    entries = [
        _Entry(installer.INSTALLER, install_py, 0o755),
        model_file,
        _Entry(installer.CONFIG, config_text.encode()),
        _Entry(installer.UNIT, unit_path.read_bytes()),
        _Entry(installer.REQUIREMENTS, requirements_txt(wheels).encode()),
        *(_Entry(f"{installer.WHEELS}/{p.name}", p) for p in wheel_paths),
    ]
    hashes = {e.name: e.sha256() for e in entries}
    content = hashlib.sha256("".join(f"{k} {v}\n" for k, v in sorted(hashes.items())).encode()).hexdigest()
    version = _check_name(version or f"{edgecnn.__version__}-{content[:8]}", "version")
    readme = README.format(name=name, version=version, target=target.describe()).encode()
    entries.append(_Entry("README.txt", readme))
    hashes["README.txt"] = hashlib.sha256(readme).hexdigest()

    summary = model_summary(parsed, spec, ops, hashes[installer.MODEL], model_file.size())
    manifest_bytes = build_manifest(name, version, _created(), target, summary, wheels, hashes)
    entries.append(_Entry(installer.MANIFEST, manifest_bytes))

    top = f"{name}-{version}-{target.arch}"
    out_path = Path(out or "dist") / f"{top}.tar.gz" if _names_a_folder(out) else Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    total = sum(e.size() for e in entries)
    log(f"writing {out_path} ({len(entries)} files, {total / 1e6:.1f} MB before compression)")
    _write_tar(out_path, top, entries)
    timings["write"] = round(time.perf_counter() - step, 2)
    timings["total"] = round(time.perf_counter() - started, 2)
    manifest = json.loads(manifest_bytes)
    return BundleResult(out_path, manifest, out_path.stat().st_size, wheels, house.from_cache, timings)
