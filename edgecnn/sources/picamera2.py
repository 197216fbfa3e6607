"""Raspberry Pi camera source through picamera2 (libcamera): a main and a low-resolution stream.

The camera runs a video configuration with two streams from the same sensor readout:
``main`` (``size``, for snapshots and previews) and ``lores`` (``lores_size``, what
inference sees, so that the board never resizes full frames). Each frame is taken inside
``Picamera2.captured_request()``, which returns the request to the camera when the block
ends; ``request.make_array()`` copies the buffer out first. On a Pi 4 the lores stream
must be YUV420: planar I420, Y then U (Cb) then V (Cr), as picamera2's own
``YUV420_to_RGB`` reads it, converted here with ``cv2.COLOR_YUV2BGR_I420``. (OpenCV's
``COLOR_YUV420p2BGR`` is an alias of ``COLOR_YUV2BGR_YV12``, V before U: on I420 data it
swaps the chroma planes and gives wrong colours.) A Pi 5 may deliver RGB instead.
Note picamera2's naming: ``RGB888`` is stored B, G, R (OpenCV's order), ``BGR888`` R, G, B.

picamera2 is installed with apt on Raspberry Pi OS (``python3-picamera2``; a venv needs
``--system-site-packages``). It is imported when the source starts, so the config
validates anywhere; elsewhere :meth:`Picamera2Source.start` fails with a clear message.
This module cannot be tested without the camera; the API calls follow picamera2's
``Picamera2.create_video_configuration``, ``captured_request`` and ``CompletedRequest.make_array``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from edgecnn.sources.base import Frame, Source, SourceError, SourceSettings

if TYPE_CHECKING:  # OpenCV and numpy load when the camera starts: configs validate without them
    import numpy as np

#: lores formats and the ``cv2.cvtColor`` code that turns them into BGR (None: already BGR in memory)
_TO_BGR: dict[str, str | None] = {
    "YUV420": "COLOR_YUV2BGR_I420",
    "RGB888": None,
    "BGR888": "COLOR_RGB2BGR",
}


class Picamera2Config(SourceSettings):
    """Settings of the ``picamera2`` source."""

    type: Literal["picamera2"] = Field(description="Selects this source.")
    camera: int = Field(0, ge=0, le=16, description="Camera number (0 for the only or first camera).")
    size: tuple[int, int] = Field(
        (1280, 720), description="Main stream [width, height] (64..4608 x 64..3496)."
    )
    lores_size: tuple[int, int] = Field(
        (640, 360), description="Low-resolution stream inference runs on; same aspect ratio as size."
    )
    lores_format: Literal["YUV420", "RGB888", "BGR888"] = Field(
        "YUV420", description="Lores pixel format; a Pi 4 supports only YUV420 there."
    )
    fps: float = Field(15.0, gt=0.0, le=120.0, description="Frame rate asked of the camera.")
    keep_main: bool = Field(
        False,
        description="Hand the main stream to sinks (snapshots, preview) and report boxes in its pixels; "
        "costs a copy of every main frame.",
    )
    buffer_count: int = Field(4, ge=2, le=16, description="Camera buffers (picamera2's video default is 6).")
    read_timeout: float = Field(
        5.0, gt=0.0, le=120.0, description="Seconds one captured_request() may wait for a frame."
    )

    @field_validator("size", "lores_size")
    @classmethod
    def _check_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not (64 <= value[0] <= 4608 and 64 <= value[1] <= 3496) or value[0] % 2 or value[1] % 2:
            raise ValueError("width 64..4608 and height 64..3496, both even")
        return value

    @model_validator(mode="after")
    def _check_lores(self) -> Picamera2Config:
        if self.lores_size[0] > self.size[0] or self.lores_size[1] > self.size[1]:
            raise ValueError("lores_size must not be larger than size")
        return self


class Picamera2Source(Source):
    """Frames from the Pi camera: inference on ``lores``, ``main`` kept for sinks if asked.

    Args:
        config: the source's settings.
    """

    live = True

    def __init__(self, config: Picamera2Config) -> None:
        self.config = config
        self.name = config.name or f"picamera2:{config.camera}"
        self._camera: Any = None
        self._count = 0

    def start(self) -> None:
        """Open, configure and start the camera.

        Raises:
            SourceError: picamera2 is not installed, or the camera cannot be opened.
        """
        try:
            from picamera2 import Picamera2  # Raspberry Pi OS only: apt install python3-picamera2
        except ImportError as exc:
            raise SourceError(
                f"picamera2 is not available ({exc}); on Raspberry Pi OS: sudo apt install python3-picamera2 "
                "and create the venv with --system-site-packages"
            ) from None
        cfg = self.config
        camera = Picamera2(cfg.camera)
        try:
            video = camera.create_video_configuration(
                main={"size": tuple(cfg.size), "format": "RGB888"},
                lores={"size": tuple(cfg.lores_size), "format": cfg.lores_format},
                controls={"FrameRate": cfg.fps},
                buffer_count=cfg.buffer_count,
            )
            camera.configure(video)
            camera.start()
        except Exception:
            camera.close()
            raise
        self._camera = camera

    def read(self) -> Frame:
        """The next request's lores frame as BGR (and its main frame with ``keep_main``)."""
        if self._camera is None:
            raise SourceError(f"{self.name} is not started")
        with self._camera.captured_request(wait=self.config.read_timeout) as request:
            lores = request.make_array("lores")  # a copy: valid after the request is released
            main = request.make_array("main") if self.config.keep_main else None
        frame = Frame(image=self._to_bgr(lores), ts=time.time(), index=self._count, full=main)
        self._count += 1
        return frame

    def _to_bgr(self, array: np.ndarray) -> np.ndarray:
        import cv2
        import numpy as np

        code = _TO_BGR[self.config.lores_format]
        width, height = self.config.lores_size
        if code is None:
            return array  # make_array already dropped any stride padding of RGB formats
        bgr = cv2.cvtColor(array, getattr(cv2, code))
        return np.ascontiguousarray(bgr[:height, :width])  # YUV420 rows may carry stride padding

    def stop(self) -> None:
        """Stop and close the camera."""
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


def build(config: Picamera2Config) -> Picamera2Source:
    """The registry's entry point: a :class:`Picamera2Source` for ``config``."""
    return Picamera2Source(config)
