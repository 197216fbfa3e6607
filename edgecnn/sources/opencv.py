"""OpenCV source: USB / V4L2 cameras, video files, RTSP / HTTP streams, image folders.

``input`` picks the kind:

* a camera index (``0``) or a V4L2 device (``/dev/video0``, ``/dev/v4l/by-id/...``),
  opened with the V4L2 backend; ``size``, ``fps`` and ``fourcc`` are asked of it;
* a URL (``rtsp://``, ``http://``, ...), opened with FFmpeg with open and read timeouts,
  so that a dead stream returns an error instead of blocking; credentials in the URL are
  removed from the source's name;
* a folder, or a glob pattern (``frames/*.jpg``), read in sorted order;
* anything else is a video file.

Files and folders end (:class:`~edgecnn.sources.base.EndOfStream`) unless ``loop`` is set,
or, for folders and globs, ``watch``: then the source waits for images added later (a camera
uploading snapshots over FTP), taking each once it has been unchanged for ``watch_settle_s``;
``fps`` paces them (default: as fast as the daemon takes them). A file, folder or glob that
does not exist, or (:meth:`OpenCVSource.check`) gives no frame at all, is a config error;
a camera or stream that does not answer is an outage, retried.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from edgecnn._stderr import captured_stderr_fd
from edgecnn.errors import ConfigError
from edgecnn.imagefile import looks_complete
from edgecnn.sources.base import EndOfStream, Frame, NoFrameYet, Source, SourceError, SourceSettings

if TYPE_CHECKING:  # OpenCV and numpy load when a source opens: configs validate without them
    import cv2
    import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: ``watch``: the folder is looked at every ``WATCH_POLL_S`` while idle, and a read waits at
#: most ``WATCH_WAIT_S`` before saying it has nothing yet (``watch_settle_s`` is a setting).
WATCH_POLL_S = 0.25
WATCH_WAIT_S = 1.0
Kind = Literal["device", "stream", "images", "file"]
#: What FFmpeg (``[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0...] moov atom not found``), OpenCV
#: (``[ WARN:0@0.013] global cap_ffmpeg_impl.hpp:1329 open ...``) and libjpeg print about a
#: file :meth:`OpenCVSource.check` tries: its one-line error says what matters.
DECODER_NOISE = re.compile(
    r"^\[[^\]]* @ 0x[0-9a-f]+\] |^\[ *(WARN|ERROR|INFO):\d+@[\d.]+\] "
    r"|^Corrupt JPEG data|^Premature end of JPEG file"
)


class OpenCVConfig(SourceSettings):
    """Settings of the ``opencv`` source."""

    type: Literal["opencv"] = Field(description="Selects this source.")
    input: int | str = Field(
        description="Camera index, /dev/videoN, video file, rtsp:// or http:// URL, image folder or glob."
    )
    size: tuple[int, int] | None = Field(
        None, description="Cameras: capture size [width, height] to ask for (1..8192 each)."
    )
    fps: float | None = Field(
        None,
        gt=0.0,
        le=1000.0,
        description="Cameras: frame rate to ask for. Files and folders: playback rate (default: as fast "
        "as they are processed).",
    )
    fourcc: str | None = Field(
        None, min_length=4, max_length=4, description="Cameras: pixel format to ask for, e.g. MJPG."
    )
    loop: bool = Field(False, description="Files and folders: start over at the end instead of ending.")
    watch: bool = Field(
        False,
        description="Image folders and globs: after the last image, wait for new ones (an upload folder) "
        "instead of ending; each is taken once unchanged for watch_settle_s.",
    )
    watch_settle_s: float = Field(
        1.0,
        ge=0.0,
        le=600.0,
        description="watch: seconds a new image's size and modification time must stay unchanged before "
        "it is read (an upload still being written is not).",
    )
    open_timeout: float = Field(
        10.0, gt=0.0, le=600.0, description="Streams: seconds FFmpeg may take to open (and to read a frame)."
    )

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not all(1 <= v <= 8192 for v in value):
            raise ValueError("width and height must be 1..8192")
        return value

    @field_validator("input")
    @classmethod
    def _check_input(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= 255:
            raise ValueError("a camera index is 0..255")
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty input")
        return value

    @model_validator(mode="after")
    def _check_watch(self) -> OpenCVConfig:
        if self.watch and self.loop:
            raise ValueError("loop and watch exclude each other")
        return self

    @property
    def kind(self) -> Kind:
        """What ``input`` is: ``device``, ``stream``, ``images`` or ``file``."""
        return input_kind(self.input)


def input_kind(value: int | str) -> Kind:
    """Tell a camera, a stream URL, an image folder or glob, and a video file apart."""
    if isinstance(value, int) or value.isdigit() or value.startswith("/dev/"):
        return "device"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value):
        return "stream"
    if any(c in value for c in "*?[") or Path(value).is_dir():
        return "images"
    return "file"


def public_name(value: int | str) -> str:
    """The input as it may appear in records and logs: URLs without user name and password."""
    text = str(value)
    if input_kind(value) != "stream":
        return text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def _device_index(value: int | str) -> int:
    if isinstance(value, int) or value.isdigit():
        return int(value)
    real = os.path.realpath(value)  # /dev/v4l/by-id/... links to /dev/videoN
    match = re.fullmatch(r"/dev/video(\d+)", real)
    if match is None:
        raise ConfigError(
            f"source input {value!r}: not a V4L2 device (expected /dev/videoN or a link to one)"
        )
    return int(match.group(1))


def _image_files(value: str) -> list[str]:
    if Path(value).is_dir():
        names = [str(p) for p in sorted(Path(value).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    else:
        names = sorted(n for n in glob.glob(value) if Path(n).suffix.lower() in IMAGE_SUFFIXES)
    return names


class OpenCVSource(Source):
    """Frames from :class:`cv2.VideoCapture` (or :func:`cv2.imread` for folders).

    Args:
        config: the source's settings.

    Raises:
        ConfigError: a file, folder or glob that does not exist or holds no images.
    """

    def __init__(self, config: OpenCVConfig) -> None:
        self.config = config
        self.kind = config.kind
        self.name = config.name or public_name(config.input)
        self.live = self.kind in ("device", "stream")
        self._cap: cv2.VideoCapture | None = None
        self._files: list[str] = []
        self._unreadable: set[str] = set()  # files already reported as skipped
        self._next = 0
        self._count = 0
        self._due = 0.0
        self._queue: deque[str] = deque()  # watch: images found, not yet read
        self._seen: set[str] = set()  # watch: images queued once (those still there)
        self._listed_at: int | None = None  # watch: the folder's mtime when last listed
        #: watch: images not settled yet: their (size, mtime) and when it was first seen so
        self._pending: dict[str, tuple[tuple[int, int], float]] = {}
        value = config.input
        if config.watch and self.kind != "images":
            missing = self.kind == "file" and not Path(str(value)).exists()
            problem = "no such folder" if missing else "watch is for image folders and globs"
            raise ConfigError(f"source input {value!r}: {problem}")
        if self.kind == "file" and not Path(str(value)).is_file():
            raise ConfigError(f"source input {value!r}: no such file")
        if self.kind == "images" and not config.watch:
            self._files = _image_files(str(value))
            if not self._files:
                raise ConfigError(f"source input {value!r}: no images ({', '.join(IMAGE_SUFFIXES)})")
        if self.kind == "device":
            _device_index(value)  # checks the name now: a typo is a config error, not an outage

    def check(self) -> None:
        """Files, folders and globs: read a first frame now, so that a file that is no video
        or a folder without a readable image is a config error (exit 2), not an outage
        retried for ever. Cameras and streams pass: they may answer later.

        Raises:
            ConfigError: no frame can be read, naming the input.
        """
        if self.live or self.config.watch:  # a watched folder may be empty until an upload
            return
        import cv2

        value = self.config.input
        with captured_stderr_fd(DECODER_NOISE):
            if self.kind == "images":
                if not any(cv2.imread(path, cv2.IMREAD_COLOR) is not None for path in self._files):
                    raise ConfigError(
                        f"source input {value!r}: none of its {len(self._files)} image files can be read"
                    )
                return
            cap = self._open()
            try:
                opened = cap.isOpened()
                readable = opened and cap.read()[0]
            finally:
                cap.release()
        if not opened:
            raise ConfigError(f"source input {value!r}: OpenCV cannot open it as a video")
        if not readable:
            raise ConfigError(f"source input {value!r}: no frame can be read from it")

    def start(self) -> None:
        """Open the capture (not needed for folders)."""
        if self.kind == "images":
            return
        cap = self._open()
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.name}")
        self._cap = cap

    def _open(self) -> cv2.VideoCapture:
        import cv2

        cfg = self.config
        if self.kind == "device":
            params: list[int] = []
            if cfg.fourcc:
                params += [cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cfg.fourcc)]
            if cfg.size:
                params += [cv2.CAP_PROP_FRAME_WIDTH, cfg.size[0], cv2.CAP_PROP_FRAME_HEIGHT, cfg.size[1]]
            cap = cv2.VideoCapture(_device_index(cfg.input), cv2.CAP_V4L2, params)
            if cfg.fps:
                cap.set(cv2.CAP_PROP_FPS, cfg.fps)
            return cap
        if self.kind == "stream":
            ms = int(cfg.open_timeout * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            return cv2.VideoCapture(str(cfg.input), cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(str(cfg.input))

    def read(self) -> Frame:
        """The next frame; files and folders wait for their ``fps`` pace if one is set."""
        if not self.live and self.config.fps:
            now = time.monotonic()
            if self._due > now:
                time.sleep(self._due - now)
            self._due = max(now, self._due) + 1.0 / self.config.fps
        path = None
        if self.config.watch:
            image, path = self._read_watched()
        elif self.kind == "images":
            image, path = self._read_images()
        else:
            image = self._read_capture()
        frame = Frame(image=image, ts=time.time(), index=self._count, path=path)
        self._count += 1
        return frame

    def _read_capture(self) -> np.ndarray:
        import cv2

        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        ok, image = self._cap.read()
        if ok and image is not None:
            return image
        if self.kind == "file":
            if not self.config.loop:
                raise EndOfStream(self.name)
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
            if ok and image is not None:
                return image
        raise SourceError(f"no frame from {self.name}")

    def _read_images(self) -> tuple[np.ndarray, str]:
        for _ in range(len(self._files)):
            if self._next >= len(self._files):
                if not self.config.loop:
                    raise EndOfStream(self.name)
                self._next = 0
            path = self._files[self._next]
            self._next += 1
            image = self._imread(path)
            if image is not None:
                return image, path
        raise SourceError(f"no readable image in {self.name}")

    def _imread(self, path: str) -> np.ndarray | None:
        """The image, or None after a warning (once per file) that it was skipped."""
        import cv2

        gone = not os.path.isfile(path)  # deleted since the folder was listed
        short = not gone and _cut_short(path)  # OpenCV would decode it, the missing rows grey
        image = None if gone or short else cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None and path not in self._unreadable:  # once per file, also when looping
            self._unreadable.add(path)
            if gone:
                reason = "no longer there"
            elif short:
                reason = "cut short (the file ends before its image data: an upload or copy that stopped)"
            else:
                reason = "not an image OpenCV can decode"
            log.warning("skipping %s: %s", path, reason)
        return image

    def _read_watched(self) -> tuple[np.ndarray, str]:
        """The next new image of a watched folder or glob, in name order.

        Raises:
            NoFrameYet: none came within ``WATCH_WAIT_S`` (or a quarter of ``stall_timeout``,
                so that waiting never looks like a hung read).
        """
        deadline = time.monotonic() + min(WATCH_WAIT_S, self.config.stall_timeout / 4)
        while True:
            while self._queue:
                path = self._queue.popleft()
                image = self._imread(path)
                if image is not None:
                    return image, path
            if time.monotonic() >= deadline:
                raise NoFrameYet(self.name)
            if not self._list_new():
                time.sleep(WATCH_POLL_S)

    def _list_new(self) -> bool:
        """Queue the images that appeared since the last listing and are settled; whether any did.

        A folder is listed again only when its modification time changed or an image was too
        new to take; images no longer there are forgotten, so memory follows the folder.
        """
        value = str(self.config.input)
        try:
            mtime = os.stat(value).st_mtime_ns if os.path.isdir(value) else None
        except OSError:
            mtime = None
        if mtime is not None and mtime == self._listed_at and not self._pending:
            return False
        self._listed_at = mtime
        listing = _image_files(value)
        present = set(listing)
        self._seen &= present
        self._unreadable &= present
        self._pending = {path: seen for path, seen in self._pending.items() if path in present}
        now = time.monotonic()
        for path in listing:
            if path in self._seen:
                continue
            try:
                info = os.stat(path)
            except OSError:
                continue
            signature = (info.st_size, info.st_mtime_ns)
            first = self._pending.get(path)
            if first is None or first[0] != signature:  # new, or still being written
                self._pending[path] = (signature, now)
            elif now - first[1] >= self.config.watch_settle_s:
                del self._pending[path]
                self._seen.add(path)
                self._queue.append(path)
        return bool(self._queue)

    def stop(self) -> None:
        """Release the capture."""
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


def build(config: OpenCVConfig) -> OpenCVSource:
    """The registry's entry point: an :class:`OpenCVSource` for ``config``."""
    return OpenCVSource(config)


def _cut_short(path: str) -> bool:
    """Whether the image file at ``path`` ends before its image data does (a truncated JPEG)."""
    try:
        with open(path, "rb") as f:
            return not looks_complete(f, f.read(64))
    except OSError:  # unreadable: the decoder says so
        return False
