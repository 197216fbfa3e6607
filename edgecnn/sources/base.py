"""The source interface: where the daemon's frames come from.

A source is one small file with a pydantic config whose ``type: Literal["..."]`` picks it
(the device config's ``source:`` is a union discriminated on ``type``) and a
``build(config) -> Source``. A :class:`Source` is deliberately simple and blocking, like
picamera2's outputs: :meth:`Source.start` opens the camera, :meth:`Source.read` waits for
the next frame, :meth:`Source.stop` releases everything; :meth:`Source.check`, called once
before start-up, refuses an input that can never work. It need not be robust:
:class:`~edgecnn.sources.threaded.ThreadedSource` runs it on its own thread, detects hung
reads, drops stale frames, and re-creates it with back-off when it fails.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgecnn.errors import EdgecnnError

if TYPE_CHECKING:  # numpy loads with the first frame: configs validate without it
    import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: the ``uint8`` frame inference runs on, ``(H, W, 3)`` BGR (``(H, W)`` grey and
            ``(H, W, 4)`` BGRA are accepted too).
        ts: capture time, seconds since the epoch.
        index: the source's own frame counter (0, 1, ...; restarts when the source is re-created).
        full: the same scene at a higher resolution (picamera2's main stream), or None.
            When given, boxes are reported in its pixels and sinks get it as the image.
        path: the image file the frame was read from (folders and globs of images), else None.
        monotonic: :func:`time.monotonic` when the frame was made, which a source does as it
            captures it (the default, so no source sets it). Unlike ``ts`` it never steps
            when the system clock is set (NTP on a board without a real-time clock), so
            durations between frames (how long a tracked object has been lost) use it.
    """

    image: np.ndarray = field(repr=False)
    ts: float
    index: int = 0
    full: np.ndarray | None = field(default=None, repr=False)
    path: str | None = None
    monotonic: float = field(default_factory=time.monotonic)


class SourceError(EdgecnnError):
    """Opening a source or reading from it failed; the threaded source retries with back-off."""


class EndOfStream(Exception):  # noqa: N818 - an ending, not an error
    """The source has no more frames (a video file or folder without ``loop``)."""


class NoFrameYet(Exception):  # noqa: N818 - a pause, not an error
    """The source has no frame now but will have later (a watched folder waiting for new
    images): the reader asks again, without counting a failure or a stall."""


class SourceSettings(BaseModel):
    """Settings every source has: robustness and frame hand-over (see ``docs/daemon.md``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str | None = Field(
        None, min_length=1, max_length=200, description="Name in records and health; default from the input."
    )
    stall_timeout: float = Field(
        20.0,
        ge=0.1,
        le=600.0,
        description="A read (or open) blocking longer than this many seconds marks the source offline "
        "and replaces it (Frigate restarts a feed after 20 s without frames).",
    )
    reconnect_initial: float = Field(
        0.5, gt=0.0, le=30.0, description="First wait in seconds before re-opening a failed source."
    )
    reconnect_max: float = Field(
        30.0, gt=0.0, le=30.0, description="Longest wait in seconds between attempts; it doubles up to this."
    )
    realtime: bool | None = Field(
        None,
        description="Keep only the newest frame and drop stale ones (cameras, streams), or hand over "
        "every frame (files, folders). Default: by the kind of input.",
    )

    @model_validator(mode="after")
    def _check_backoff(self) -> SourceSettings:
        if self.reconnect_initial > self.reconnect_max:
            raise ValueError("reconnect_initial must not exceed reconnect_max")
        return self


class Source(abc.ABC):
    """Base class of every frame source. Usable as a context manager (``start`` / ``stop``).

    Attributes:
        name: what records and health show (a device, a file name, a URL without credentials).
        live: True for cameras and streams (frames come at their own pace and go stale),
            False for files and folders (every frame can be processed).
    """

    name: str = "source"
    live: bool = True

    def check(self) -> None:  # noqa: B027 - optional hook
        """Refuse, once before start-up, an input that can never work (a file that is no
        video, a folder without a readable image); a camera that is not there yet may come
        later and passes.

        Raises:
            ConfigError: the input can never give a frame.
        """

    def start(self) -> None:  # noqa: B027 - optional hook
        """Open the device, file or stream.

        Raises:
            SourceError: it cannot be opened now (it may work later).
        """

    @abc.abstractmethod
    def read(self) -> Frame:
        """Wait for and return the next frame.

        Raises:
            SourceError: the read failed.
            EndOfStream: there are no more frames.
            NoFrameYet: none now, after waiting about a second; ask again.
        """

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release the device, file or stream. Safe to call more than once."""

    def __enter__(self) -> Source:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def frame_problem(frame: object) -> str | None:
    """Why ``frame`` is not a usable frame (None when it is): missing, empty, wrong type or shape."""
    import numpy as np

    if not isinstance(frame, Frame):
        return f"the source returned {type(frame).__name__}, not a Frame"
    image = frame.image
    if not isinstance(image, np.ndarray):
        return f"empty frame ({type(image).__name__})"
    if image.size == 0:
        return f"empty frame of shape {image.shape}"
    if image.dtype != np.uint8:
        return f"frame of type {image.dtype}, expected uint8"
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        return f"frame of shape {image.shape}, expected (H, W), (H, W, 3) or (H, W, 4)"
    return None
