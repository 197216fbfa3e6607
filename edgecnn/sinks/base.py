"""The sink interface: where the daemon sends each processed frame.

A sink is one small file with a pydantic config whose ``type: Literal["..."]`` picks it
(the device config's ``sinks:`` list is a union discriminated on ``type``). The daemon
calls :meth:`Sink.emit` from its finish thread for every processed frame, and once more
at stop with a :attr:`FrameResult.final` result when tracked objects end then; a sink must
never block it: slow work goes through a bounded queue to the sink's own thread, and what
does not fit is dropped and counted in :attr:`Sink.dropped`. :meth:`Sink.status` is called
from the source's threads and must return at once too.

A sink module is found by :mod:`edgecnn.sinks` (the registry) by convention:

* one ``class XConfig(BaseModel)`` with ``type: Literal["x"]`` and ``extra="forbid"``;
* ``def build(config: XConfig, context: SinkContext) -> Sink``; without a ``build``, the
  module's :class:`Sink` subclass is called as ``XSink(config, **context fields it names)``
  (for example ``XSink(config, *, device, state)``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only the annotations need numpy: configs validate without it
    import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detection in source-frame pixels (or one top-k label for classifiers: no box),
    with the names of the config's zones it stands in and, with tracking on, the id of the
    object it is."""

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float] | None = None
    zones: tuple[str, ...] = ()
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON record's entry: ``{label, class_id, score, box, zones, track_id}`` (box
        omitted when None, zones when in none, track_id without one)."""
        out: dict[str, Any] = {"label": self.label, "class_id": self.class_id, "score": round(self.score, 5)}
        if self.box is not None:
            out["box"] = [round(float(v), 2) for v in self.box]
        if self.zones:
            out["zones"] = list(self.zones)
        if self.track_id is not None:
            out["track_id"] = self.track_id
        return out


@dataclass(frozen=True)
class FrameResult:
    """Everything known about one processed frame; what sinks receive.

    Attributes:
        ts: capture time, ISO-8601 UTC.
        frame: processed-frame counter (1, 2, ...).
        source: the source's name (device, file or URL with credentials removed).
        model: the model's name.
        latency_ms: ``{"pre": .., "infer": .., "post": ..}`` milliseconds.
        detections: the kept detections, best first.
        image: the BGR source frame (for preview / snapshot sinks; never serialised).
        file: the image file of the frame when the source is a folder or glob of images.
        events: with tracking on, the objects that got their id (``new``), entered or left
            a zone (``update``) or ended (``end``) on this frame (records described in
            :mod:`edgecnn.daemon.tracking`).
        final: True for the one result the daemon sends after its last frame, when it
            stops, carrying the ``end`` events of the objects still followed; it is no
            frame: ``ts`` is the time of the stop, ``frame`` the last frame's number, no
            detections, latencies or image. Sinks that count or show frames skip it.
    """

    ts: str
    frame: int
    source: str
    model: str
    latency_ms: dict[str, float]
    detections: tuple[Detection, ...]
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    file: str | None = None
    events: tuple[dict[str, Any], ...] = ()
    final: bool = False

    def to_record(self) -> dict[str, Any]:
        """The JSON-lines record (the documented schema, without the image); ``file`` only
        for frames read from image files, ``events`` only when there are some, ``final``
        only when true."""
        record = {
            "ts": self.ts,
            "frame": self.frame,
            "source": self.source,
            "model": self.model,
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "detections": [d.to_dict() for d in self.detections],
        }
        if self.file is not None:
            record["file"] = self.file
        if self.events:
            record["events"] = list(self.events)
        if self.final:
            record["final"] = True
        return record


#: Object masks as sinks get them: polygons ``[[x, y], ...]`` in fractions of the frame.
Masks = tuple[tuple[tuple[float, float], ...], ...]


@dataclass(frozen=True)
class SinkContext:
    """What the daemon tells every sink when it builds it.

    Attributes:
        device: the device's name (``device:`` in the config; MQTT topic level, page title).
        model: the model's name.
        labels: the model's class names, index = class id.
        task: the model's task, ``detect`` or ``classify``.
        masks: the config's object masks (polygons in fractions of the frame), for previews.
        zones: the names of the config's zones.
        state: the daemon's live :class:`~edgecnn.daemon.state.DaemonStats` (fps, source
            state, latest frame, ...) for sinks that report health; None outside the daemon.
        state_dir: a writable directory for files (``$STATE_DIRECTORY`` under systemd).
    """

    device: str
    model: str = ""
    labels: tuple[str, ...] = ()
    task: str = "detect"
    masks: Masks = ()
    zones: tuple[str, ...] = ()
    state: Any = None
    state_dir: Path = Path(".")


class Sink(abc.ABC):
    """Base class of every sink. Usable as a context manager (``start`` / ``stop``)."""

    #: frames or messages dropped because the sink could not keep up
    dropped: int = 0

    def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections, start threads. Called once before the first :meth:`emit`."""

    @abc.abstractmethod
    def emit(self, result: FrameResult) -> None:
        """Hand over one frame's result; must return at once (queue or drop)."""

    def status(self, state: str, detail: str = "") -> None:  # noqa: B027 - optional hook
        """Source / daemon status changes (``online``, ``offline``, ``stopping``)."""

    def stop(self, timeout: float = 2.0) -> None:  # noqa: B027 - optional hook
        """Flush what is queued (within ``timeout`` seconds) and release resources."""

    def __enter__(self) -> Sink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
