"""JSON-lines sink: one record per frame, to stdout (journald) or to a size-rotated file.

Each line is :meth:`FrameResult.to_record <edgecnn.sinks.base.FrameResult.to_record>`::

    {"ts": "2026-11-30T12:00:00.100Z", "frame": 1, "source": "/dev/video0", "model": "det",
     "latency_ms": {"pre": 1.2, "infer": 9.8, "post": 0.4},
     "detections": [{"label": "person", "class_id": 0, "score": 0.91, "box": [x1, y1, x2, y2]}]}

with boxes in source-frame pixels (classifiers: top-k labels, no ``box``). With tracking on,
the daemon's last record at stop is a :attr:`~edgecnn.sinks.base.FrameResult.final` one
carrying the ``end`` events of the objects still followed; it is written like any other.
:meth:`JsonlSink.emit` serialises the record and queues the line; a writer thread takes
what is queued in batches and appends each batch all or nothing: a write that fails (a
full disk) is cut back to the size the file had before it, so the file always ends with a
complete line, and the batch's lines count as :attr:`~JsonlSink.dropped`. Failures are
logged per outage, not per batch: one ERROR when writing starts failing, one WARNING with
the number of lines dropped when it works again.

Before each batch the writer checks that ``path`` still names the open file; when it was
moved or removed (logrotate), or after a SIGHUP
(:func:`~edgecnn.daemon.signals.reopen_requests`), it opens ``path`` anew, creating it, as
:class:`logging.handlers.WatchedFileHandler` does. With ``max_bytes``, a line that would
grow the file past it rotates first, as :class:`logging.handlers.RotatingFileHandler`
does: ``path`` becomes ``path.1``, ``path.1`` becomes ``path.2``, ... up to ``backups``.
Only the open, non-empty file is rotated, and backups shift only up to the first missing
one, so a rotation retried after failing half-way never pushes good backups out; while
renaming fails, lines are appended past ``max_bytes`` rather than dropped.

On stdout, a closed pipe (``edgecnn run ... | head``) stops the daemon cleanly, exit code 0
(:func:`~edgecnn.daemon.signals.request_stop`). Under systemd (``$INVOCATION_ID`` set),
stdout is the journal's stream, and losing it is a failure: the daemon stops with exit code
1, so that ``Restart=on-failure`` starts it again with a new stream.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgecnn.daemon.signals import reopen_requests, request_stop
from edgecnn.sinks._outage import Outage
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
    skip_empty: bool = Field(
        False, description="Do not write frames without detections (those with tracking events are written)."
    )


class JsonlSink(Sink):
    """Append one JSON record per frame to a file (rotated by size) or to stdout.

    Args:
        config: the sink's settings.

    Attributes:
        written: lines written.
        rotations: times the file was rotated.
    """

    def __init__(self, config: JsonlConfig) -> None:
        self.config = config
        self.path = None if config.path == "-" else Path(config.path)
        self.written = 0
        self.rotations = 0
        self._overflow = 0  # lines the full queue refused (emit's thread only)
        self._lost = 0  # lines whose write failed (the writer's thread only)
        self._outage = Outage(
            log,
            str(self.path or "stdout"),
            "jsonl sink: cannot write %s: %s; dropping lines until it works again",
            "jsonl sink: writing %s again; %d lines were dropped meanwhile",
        )
        self._rotate_failing = False
        self._stdout_closed = False
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_size)
        self._file: io.FileIO | None = None
        self._size = 0  # of the open file, read at each batch and counted while writing it
        self._reopens_seen = 0
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Lines not written: the writer was ``queue_size`` lines behind, a write failed, or
        stdout was closed (what ``/metrics`` reports)."""
        return self._overflow + self._lost

    def start(self) -> None:
        """Open the file (creating its folder) and start the writer thread."""
        if self.path is not None:
            self._open()
        self._thread = threading.Thread(target=self._run, name="jsonl-sink", daemon=True)
        self._thread.start()

    def emit(self, result: FrameResult) -> None:
        """Serialise the record and queue the line; returns at once (drops when the queue is full)."""
        if self.config.skip_empty and not result.detections and not result.events:
            return
        line = json.dumps(result.to_record(), separators=(",", ":")) + "\n"
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._overflow += 1

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (within ``timeout`` seconds) and close the file."""
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("jsonl sink: writer stuck; %d lines not written", self._queue.qsize())
        self._thread.join(timeout)
        if not self._thread.is_alive():  # else the writer is stuck in the file system: leave the file to it
            self._thread = None

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 256:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = [item for item in batch if isinstance(item, str)]
            if lines:
                self._write(lines)
            if _STOP in batch:
                break
        if self._outage.lost is not None:
            log.warning(
                "jsonl sink: stopped with %s still failing; %d lines dropped", self._where, self._outage.lost
            )
        self._close()

    @property
    def _where(self) -> str:
        return str(self.path or "stdout")

    def _write(self, lines: list[str]) -> None:
        """Write one batch; a failure drops it (counted, and logged once per outage)."""
        if self.path is None:
            self._write_stdout(lines)
            return
        pending = [line.encode() for line in lines]
        try:
            self._check_file()
            while pending:
                count = _fitting(pending, self._size, self.config.max_bytes)
                if count == 0 and self._rotate():
                    continue
                count = count or len(pending)  # the rotation failed: append past max_bytes
                self._append(b"".join(pending[:count]))
                self.written += count
                pending = pending[count:]
        except OSError as exc:
            self._failed(exc, len(pending))
            return
        self._recovered()

    def _write_stdout(self, lines: list[str]) -> None:
        """Write one batch to stdout; a broken pipe ends the output (:meth:`_close_stdout`)."""
        if self._stdout_closed:
            self._lost += len(lines)
            return
        try:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                self._failed(exc, len(lines))
                return
            self._lost += len(lines)
            self._close_stdout()
            return
        self.written += len(lines)
        self._recovered()

    def _close_stdout(self) -> None:
        """stdout's reader is gone (``| head``): stop writing to it, point fd 1 at /dev/null
        (so that Python's last flush at exit cannot fail again) and ask the daemon to stop."""
        self._stdout_closed = True
        with contextlib.suppress(OSError, ValueError):  # not a real file: tests capture stdout
            fd = sys.stdout.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        if os.environ.get("INVOCATION_ID"):  # a systemd service: the journal's stream broke
            if request_stop("stdout (the journal's stream) closed", failed=True):
                log.error("jsonl sink: stdout, the journal's stream, was closed: stopping (exit code 1)")
                return
        elif request_stop("stdout closed"):
            log.info("jsonl sink: stdout was closed (broken pipe): stopping")
            return
        log.info("jsonl sink: stdout was closed (broken pipe): dropping lines from now on")

    def _failed(self, exc: OSError, lines: int) -> None:
        """Count ``lines`` as dropped; log the first failure of an outage, with its reason."""
        self._lost += lines
        self._outage.failed(exc.strerror or exc, lines)

    def _recovered(self) -> None:
        """A batch was written: end the outage, if any, saying what it cost."""
        self._outage.worked()

    # -- the file --------------------------------------------------------------------------

    def _open(self) -> None:
        """Open ``path`` for appending (creating it and its folder); close the file open before."""
        assert self.path is not None
        self._close()
        self._reopens_seen = reopen_requests()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _open_append(self.path)
        self._size = os.fstat(self._file.fileno()).st_size

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()

    def _is_open_file(self) -> bool:
        """True if ``path`` names the open file (the same inode on the same device)."""
        assert self.path is not None and self._file is not None
        try:
            named = os.stat(self.path)
        except OSError:
            return False
        return os.path.samestat(named, os.fstat(self._file.fileno()))

    def _check_file(self) -> None:
        """Reopen ``path`` if it no longer names the open file (moved or removed) or after a
        SIGHUP; read the open file's size (logrotate's ``copytruncate`` may have cut it)."""
        if self._file is None or self._reopens_seen != reopen_requests() or not self._is_open_file():
            self._open()
        else:
            self._size = os.fstat(self._file.fileno()).st_size

    def _append(self, data: bytes) -> None:
        """Append ``data`` all or nothing: after a failed write, cut the file back to its size before."""
        assert self._file is not None
        view = memoryview(data)
        try:
            while view:
                done = self._file.write(view)
                if not done:
                    raise OSError(errno.EIO, "nothing written")
                view = view[done:]
        except OSError:
            with contextlib.suppress(OSError):
                self._file.truncate(self._size)
            raise
        self._size += len(data)

    def _rotate(self) -> bool:
        """Rotate the open, non-empty file; False (the file kept, logged once) if that fails.

        Raises:
            OSError: the rotation was done but ``path`` cannot be opened anew.
        """
        assert self.path is not None and self._file is not None
        if not self._is_open_file():  # moved or removed since the batch began: someone rotated it
            self._open()
            return True
        try:
            if self.config.backups == 0:
                self._file.truncate(0)  # appending goes on at 0
            else:
                self._shift_backups()
                os.replace(self.path, self._backup(1))
        except OSError as exc:
            if not self._rotate_failing:
                self._rotate_failing = True
                log.error(
                    "jsonl sink: cannot rotate %s: %s; appending past max_bytes until it can",
                    self.path,
                    exc.strerror or exc,
                )
            return False
        if self._rotate_failing:
            self._rotate_failing = False
            log.warning("jsonl sink: rotating %s again", self.path)
        self.rotations += 1
        if self.config.backups == 0:
            self._size = 0
        else:
            self._open()
        return True

    def _backup(self, number: int) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.path.name}.{number}")

    def _shift_backups(self) -> None:
        """``path.i`` -> ``path.i+1`` for the backups from ``path.1`` up to the first missing
        one (the oldest falls off at ``backups``): after a rotation that failed between its
        renames, the retry fills the gap instead of pushing every backup one further."""
        last = 0
        while last < self.config.backups - 1 and self._backup(last + 1).exists():
            last += 1
        for number in range(last, 0, -1):
            os.replace(self._backup(number), self._backup(number + 1))


def _fitting(lines: list[bytes], size: int, limit: int) -> int:
    """How many of ``lines`` fit in a file of ``size`` bytes before it grows past ``limit``
    (0: unlimited); 0 means rotate first. An empty file takes one line, however long."""
    count = 0
    for line in lines:
        if limit and size and size + len(line) > limit:
            break
        size += len(line)
        count += 1
    return count


def _open_append(path: Path) -> io.FileIO:
    """``path`` opened for appending (created if missing), unbuffered: what :meth:`write`
    returns has reached the file system, and a failed write leaves nothing buffered."""
    return io.FileIO(path, "a")


def build(config: JsonlConfig, context: SinkContext) -> JsonlSink:
    """The registry's entry point: a :class:`JsonlSink` for ``config``."""
    return JsonlSink(config)
