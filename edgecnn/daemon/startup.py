"""Start-up before the heavy imports: the model's spec, the thresholds, and the model check.

``edgecnn run`` validates the config (pydantic, no numpy or OpenCV), then calls
:func:`run_daemon`, which

1. checks the outputs (:meth:`~edgecnn.config.device.DeviceConfig.check_outputs`: no sink
   may write below a file, into the model or the source, or where another one writes),
   reads the spec the model carries (pure Python) and resolves the config's thresholds
   and labels against it: a bad config or a file that is no usable TFLite model exits 2
   here, before numpy, OpenCV or the interpreter are imported;
2. starts the child-process model check (:func:`~edgecnn.runtime.validate.start_model_check`)
   without waiting for it;
3. only then imports the daemon (numpy, OpenCV, post-processing), which opens the source,
   builds the sinks and imports the interpreter while the child checks the model. The
   model is loaded in this process only after the child reported it sound.

Never imports TensorFlow, numpy or OpenCV itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from edgecnn.config.device import DeviceConfig, PostSettings
from edgecnn.daemon.signals import stop_on_signals
from edgecnn.errors import ConfigError
from edgecnn.runtime.resolve import NO_METADATA, MissingSettingsError, join_names, resolve_file_spec
from edgecnn.runtime.spec import ModelSpec
from edgecnn.runtime.validate import ModelCheck, start_model_check
from edgecnn.sinks.base import SinkContext


def load_spec(config: DeviceConfig) -> ModelSpec:
    """The model's spec: its embedded metadata, with ``model:`` settings (if any) applied.

    Raises:
        ModelError: missing or corrupt file, invalid metadata, or a spec that does not fit.
        ConfigError: no metadata and ``model.task`` / ``model.labels`` (``--task`` /
            ``--labels`` for flags) not set.
    """
    settings = config.model
    try:
        return resolve_file_spec(settings.path, settings.spec_overrides())
    except MissingSettingsError as exc:
        names = [config.setting_name("model", key) for key in exc.missing]
        ask = ("pass " if names[0].startswith("--") else "set ") + join_names(names)
        where = config.where("model", "path")
        raise ConfigError(f"{where}: {exc.source} {NO_METADATA}: {ask}") from None


def _check_input_files(config: DeviceConfig) -> None:
    """Refuse a model or video file that does not exist, naming the key (or flag) that set it
    and, for a relative path, the working directory it was looked for in.

    Raises:
        ConfigError: one line.
    """
    video = getattr(config.source, "input", None) if getattr(config.source, "kind", None) == "file" else None
    for loc, value in ((("model", "path"), config.model.path), (("source", "input"), video)):
        if value is None or os.path.exists(value):
            continue
        where = f" (relative to the working directory {os.getcwd()})" if not os.path.isabs(value) else ""
        raise ConfigError(f"{config.where(*loc)}: {value}: no such file{where}")


@dataclass(frozen=True)
class Preflight:
    """What start-up knows before the heavy imports.

    Attributes:
        spec: the model's spec (:func:`load_spec`).
        settings: the thresholds resolved against the spec's labels.
        check: the child-process model check, running; wait with ``check.result()``.
    """

    spec: ModelSpec
    settings: PostSettings
    check: ModelCheck


def sink_context(config: DeviceConfig, spec: ModelSpec, state: Any = None) -> SinkContext:
    """What every sink is told of the device, the model and the config's masks and zones."""
    return SinkContext(
        device=config.device,
        model=spec.name,
        labels=tuple(spec.labels),
        task=spec.task,
        masks=tuple(tuple(polygon) for polygon in config.masks),
        zones=tuple(config.zones),
        state=state,
        state_dir=config.state_path,
    )


def start_up(config: DeviceConfig) -> Preflight:
    """Check the outputs, read the spec, resolve the thresholds, and start the model check
    in a child process.

    Raises:
        ConfigError: an output that cannot work, an unknown label, a model without metadata
            and without ``model:`` settings.
        ModelError: the file is missing, no TFLite model, or its metadata does not fit it.
    """
    config.check_outputs()
    _check_input_files(config)
    spec = load_spec(config)
    settings = config.resolve(spec)
    check = start_model_check(
        config.model.path,
        timeout=config.model.validate_timeout,
        num_threads=config.model.num_threads,
        ops=False,  # the daemon does not show them; listing them takes a second interpreter
    )
    return Preflight(spec, settings, check)


def run_daemon(config: DeviceConfig, max_frames: int | None = None) -> int:
    """Run the daemon in this (main) thread until SIGTERM / SIGINT, the end of the source or
    ``max_frames``; returns the exit code (0).

    Raises:
        ConfigError, ModelError: the config or the model is unusable (the CLI exits 2).
    """
    early = start_up(config)
    try:
        from edgecnn.daemon.loop import Daemon  # numpy, OpenCV: imported while the child runs

        daemon = Daemon(config, max_frames=max_frames, preflight=early)
    except BaseException:
        early.check.cancel()
        raise
    with stop_on_signals(daemon.stop):
        return daemon.run()


def check_config(config: DeviceConfig) -> str:
    """What ``--validate-config`` does: check the outputs, resolve the thresholds against
    the model's labels, check the model in a child process, build the source and read a
    first frame of a file or folder (:meth:`~edgecnn.sources.base.Source.check`), and build
    (not start) the sinks.

    Returns:
        A one-line summary.

    Raises:
        ConfigError, ModelError: what is wrong, in one line.
    """
    early = start_up(config)
    try:
        info = early.check.result()
    finally:
        early.check.cancel()
    assert info is not None
    from edgecnn.sinks import build_sink
    from edgecnn.sources import build_source

    source = build_source(config.source)
    source.check()
    spec = early.spec
    context = sink_context(config, spec)
    for sink_config in config.sinks:
        build_sink(sink_config, context)
    sinks = ", ".join(str(getattr(s, "type", "?")) for s in config.sinks) or "none"
    return (
        f"config OK: device {config.device}; model {spec.name} ({spec.task}, {spec.num_classes} labels, "
        f"input {info.input_shape} {info.input_dtype}); source {source.name}; sinks {sinks}"
    )
