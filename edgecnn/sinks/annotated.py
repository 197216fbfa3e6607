"""Annotated sink: every processed frame as a JPEG with its boxes drawn, to look through.

What ``edgecnn run --model M --source images/ --save out/`` writes, the way Ultralytics'
``predict save=True`` does: one file per frame, named after the image it came from
(``out/street.jpg`` for ``images/street.png``; a second image of the same name in a glob
becomes ``street_<frame>.jpg``), or ``frame_000001.jpg`` for cameras, streams and videos.
Unlike the snapshots sink there is no rate limit and no deletion: it is meant for a folder
or a clip, and stops (with one warning) after ``max_files`` files so that a camera left
running cannot fill the disk.

Encoding and writing happen on the sink's own thread. When its queue is full, :meth:`emit`
waits up to ``wait_s`` for room, so a folder or a file (read as fast as it is processed)
loses no frame to a slower disk, and only then drops the frame (counted in ``dropped``).
Each file is written to a temporary name and renamed; a failed write is logged once per
outage.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgecnn.sinks._outage import Outage
from edgecnn.sinks._writer import QueueWriter
from edgecnn.sinks.base import FrameResult, Masks, Sink, SinkContext

log = logging.getLogger(__name__)


class AnnotatedConfig(BaseModel):
    """Settings of the ``annotated`` sink."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["annotated"] = Field(description="Selects this sink.")
    directory: Path = Field(description="Where the annotated frames go (created).")
    only_detections: bool = Field(False, description="Skip frames without detections.")
    jpeg_quality: int = Field(90, ge=10, le=100, description="JPEG quality.")
    max_files: int = Field(
        10_000, ge=1, le=10_000_000, description="Stop writing after this many files (one warning)."
    )
    wait_s: float = Field(
        5.0, ge=0, le=60, description="Seconds a frame may wait for room in the queue before it is dropped."
    )
    queue_size: int = Field(8, ge=1, le=64, description="Frames waiting for the writer.")


class AnnotatedSink(Sink):
    """Write every frame (or every frame with detections) as an annotated JPEG.

    Args:
        config: the sink's settings.
        masks: the config's object masks, shaded on every picture.

    Attributes:
        written: files written.
        dropped: frames not written: the writer was too slow, a write failed, or
            ``max_files`` was reached.
    """

    def __init__(self, config: AnnotatedConfig, *, masks: Masks = ()) -> None:
        self.config = config
        self.masks = masks
        self.directory = config.directory
        self.written = 0
        self._busy = 0  # frames that found no room in the queue
        self._over = 0  # frames past max_files
        self._names: set[str] = set()  # file names written in this run
        outage = Outage(
            log,
            str(self.directory),
            "annotated: cannot write to %s: %s; dropping frames until a write works",
            "annotated: writing to %s again; %d frames dropped meanwhile",
            recovered_level=logging.INFO,
        )
        self._writer = QueueWriter("annotated", self._write, outage, config.queue_size)

    def start(self) -> None:
        """Create the directory and start the writer."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._writer.start()

    @property
    def dropped(self) -> int:  # type: ignore[override]
        """Frames not written: no room in the queue, a failed write, or past ``max_files``."""
        return self._busy + self._writer.failed + self._over

    def emit(self, result: FrameResult) -> None:
        """Queue the frame, waiting up to ``wait_s`` for room."""
        if result.image is None or (self.config.only_detections and not result.detections):
            return
        if not self._writer.put(result, self.config.wait_s):
            self._busy += 1

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (allowing ``timeout`` seconds per frame) and stop the writer."""
        self._writer.stop(timeout, per_item=timeout)

    def file_name(self, result: FrameResult) -> str:
        """``<image stem>.jpg`` for frames of image files (``<stem>_<frame>.jpg`` when that
        name was already written in this run), else ``frame_<frame>.jpg``."""
        if result.file is None:
            return f"frame_{result.frame:06d}.jpg"
        stem = Path(result.file).stem
        name = f"{stem}.jpg"
        return f"{stem}_{result.frame:06d}.jpg" if name in self._names else name

    def _write(self, result: FrameResult) -> None:
        from edgecnn.sinks.draw import draw_detections, draw_masks, encode_jpeg  # OpenCV: when writing

        assert result.image is not None
        if self.written >= self.config.max_files:
            if not self._over:
                log.warning(
                    "annotated: wrote %d files to %s, the most max_files allows; not writing more",
                    self.written,
                    self.directory,
                )
            self._over += 1
            return
        image = draw_detections(draw_masks(result.image, self.masks), result.detections, copy=False)
        data = encode_jpeg(image, self.config.jpeg_quality)
        name = self.file_name(result)
        path = self.directory / name
        self.directory.mkdir(parents=True, exist_ok=True)  # removed while running
        tmp = path.with_name(f".{name}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._names.add(name)
        self.written += 1


def build(config: AnnotatedConfig, context: SinkContext) -> AnnotatedSink:
    """The registry's entry point: an :class:`AnnotatedSink` for ``config``."""
    return AnnotatedSink(config, masks=context.masks)
