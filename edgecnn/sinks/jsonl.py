"""JSON-lines sink: one record per frame, to stdout (journald) or to a size-rotated file.

Each line is :meth:`FrameResult.to_record <edgecnn.sinks.base.FrameResult.to_record>`::

    {"ts": "2026-11-30T12:00:00.100Z", "frame": 1, "source": "/dev/video0", "model": "det",
     "latency_ms": {"pre": 1.2, "infer": 9.8, "post": 0.4},
     "detections": [{"label": "person", "class_id": 0, "score": 0.91, "box": [x1, y1, x2, y2]}]}

with boxes in source-frame pixels (classifiers: top-k labels, no ``box``).
:meth:`JsonlSink.emit` serialises the record and queues the line; a writer thread
appends whole lines and flushes after each batch, so the file only ever ends with a
complete line once :meth:`JsonlSink.stop` returns. With ``max_bytes``, a line that would
grow the file past it rotates first, as :class:`logging.handlers.RotatingFileHandler`
does: ``path`` becomes ``path.1``, ``path.1`` becomes ``path.2``, ... up to ``backups``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field

from edgecnn.sinks.base import FrameResult, Sink, SinkContext

log = logging.getLogger(__name__)

_STOP = object()


class JsonlConfig(BaseModel):
    """Settings of the ``jsonl`` sink."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["jsonl"] = Field(description="Selects this sink.")
    path: str = Field(
        "-", min_length=1, description="File to append to; '-' writes to stdout (the journal under systemd)."
    )
    max_bytes: int = Field(
        10 * 1024 * 1024, ge=0, le=2**40, description="Rotate before the file grows past this size; 0: never."
    )
    backups: int = Field(
        5, ge=0, le=1000, description="Rotated files kept (path.1 is the newest); 0 truncates instead."
    )
    queue_size: int = Field(
        1000, ge=1, le=1_000_000, description="Lines waiting for the writer; beyond it lines are dropped."
    )
    skip_empty: bool = Field(False, description="Do not write frames without detections.")


class JsonlSink(Sink):
    """Append one JSON record per frame to a file (rotated by size) or to stdout.

    Args:
        config: the sink's settings.

    Attributes:
        dropped: lines dropped because the writer fell ``queue_size`` lines behind.
        written: lines written.
        rotations: times the file was rotated.
    """

    def __init__(self, config: JsonlConfig) -> None:
        self.config = config
        self.path = None if config.path == "-" else Path(config.path)
        self.dropped = 0
        self.written = 0
        self.rotations = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_size)
        self._file: IO[str] | None = None
        self._size = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the file (creating its folder) and start the writer thread."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        self._thread = threading.Thread(target=self._run, name="jsonl-sink", daemon=True)
        self._thread.start()

    def emit(self, result: FrameResult) -> None:
        """Serialise the record and queue the line; returns at once (drops when the queue is full)."""
        if self.config.skip_empty and not result.detections:
            return
        line = json.dumps(result.to_record(), separators=(",", ":")) + "\n"
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (within ``timeout`` seconds), flush and close."""
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("jsonl sink: writer stuck; %d lines not written", self._queue.qsize())
        self._thread.join(timeout)
        if self._thread.is_alive():
            return  # the writer is stuck in the file system: leave the file to it
        self._thread = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> None:
        assert self.path is not None
        self._file = self.path.open("a", encoding="utf-8")
        self._size = self._file.tell()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 256:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = _STOP in batch
            lines = [item for item in batch if isinstance(item, str)]
            try:
                self._write(lines)
            except OSError as exc:
                self.dropped += len(lines)
                log.error("jsonl sink: cannot write %s: %s", self.path or "stdout", exc.strerror or exc)
            if done:
                return

    def _write(self, lines: list[str]) -> None:
        if self.path is None:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
            self.written += len(lines)
            return
        limit = self.config.max_bytes
        chunk: list[str] = []
        for line in lines:
            size = len(line.encode("utf-8"))
            if limit and self._size and self._size + size > limit:
                self._flush(chunk)
                chunk = []
                self._rotate()
            chunk.append(line)
            self._size += size
        self._flush(chunk)

    def _flush(self, chunk: list[str]) -> None:
        if chunk and self._file is not None:
            self._file.write("".join(chunk))
            self._file.flush()
            self.written += len(chunk)

    def _rotate(self) -> None:
        assert self.path is not None and self._file is not None
        self._file.close()
        backups = self.config.backups
        if backups == 0:
            self.path.open("w").close()
        else:
            for i in range(backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.rotations += 1
        self._open()


def build(config: JsonlConfig, context: SinkContext) -> JsonlSink:
    """The registry's entry point: a :class:`JsonlSink` for ``config``."""
    return JsonlSink(config)
