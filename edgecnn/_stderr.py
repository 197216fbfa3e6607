"""What C++ code writes to file descriptor 2, with the lines known to be noise dropped.

TensorFlow, its TFLite converter and OpenCV's image decoders print from C++ straight to fd 2
(``sys.stderr`` and logging never see it), so the only way to keep their notices from users
is to point fd 2 somewhere else and pass on every line that is not a known notice: a real
error still reaches the user. Two ways:

* :func:`captured_stderr_fd`, for a short block (an import, a conversion): fd 2 goes to a
  temporary file, and the lines are written back afterwards;
* :func:`filtered_stderr_fd`, for a block that runs for hours (training): fd 2 goes to a pipe,
  and a thread passes each line on as soon as it is complete. :func:`progress_safe_stderr_fd`
  is that filter for work under a progress bar: the lines can go above the bar, not into it.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

#: Lines TensorFlow prints at start-up that say nothing to an edgecnn user (its import, the
#: first look for devices): quietened by ``edgecnn.cli._tfquiet`` and during training.
TF_NOTICE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|^[IWE]\d{4} [\d:.]+ +\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor|"
    r"cuda_dnn|cuda_fft|cuda_blas|cuda_diagnostics)\.cc:\d+\]"
    r"|^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"
)

#: Seconds a line without its newline waits for the rest before it is passed on as it is
#: (a prompt, or a progress line redrawn with ``\r``).
PARTIAL_LINE_WAIT = 0.2

#: Seconds the end of a :func:`filtered_stderr_fd` block waits for the last lines: a child
#: process that inherited fd 2 can hold the pipe open for longer.
JOIN_TIMEOUT = 2.0

#: libjpeg's warnings (through OpenCV's decoder) about a damaged JPEG that still decodes.
LIBJPEG_WARNING = re.compile(r"^(Corrupt JPEG data|Premature end of JPEG file)\b")


def drop_lines(text: str, noise: re.Pattern[str]) -> str:
    """``text`` without the lines ``noise`` matches (searched, not anchored)."""
    return "".join(line for line in text.splitlines(keepends=True) if not noise.search(line))


@contextlib.contextmanager
def captured_stderr_fd(noise: re.Pattern[str]) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block, then write back the lines
    ``noise`` does not match."""
    import tempfile  # here, not at the top: ``edgecnn run`` on a board imports this module too

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = drop_lines(capture.read().decode("utf-8", "replace"), noise)
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


@contextlib.contextmanager
def filtered_stderr_fd(
    noise: re.Pattern[str], on_line: Callable[[str], object] | None = None
) -> Iterator[None]:
    """Pass on what is written to file descriptor 2 during the block, line by line as it comes,
    without the lines ``noise`` matches (searched, as in :func:`drop_lines`).

    Fd 2 points at a pipe; a daemon thread reads it and passes each other line on as soon as
    its newline arrives, to the original fd 2 or, with ``on_line``, to ``on_line(line)`` (the
    text with its newline, called from that thread; if it raises, the line goes to fd 2). A
    line without a newline is passed on after :data:`PARTIAL_LINE_WAIT` seconds, or at the end.

    Python's own ``sys.stderr`` stays off the pipe: if it writes to fd 2, it is replaced for the
    block by a stream on a copy of the original fd 2, so what Python prints (a progress bar
    redrawn with ``\\r``, a prompt, a traceback) is neither delayed nor mixed into C++ lines.
    Logging handlers that kept the old object write through the filter, a whole line at a time.

    At the end fd 2 and ``sys.stderr`` are restored, the rest of the pipe is passed on and the
    thread is waited for, at most :data:`JOIN_TIMEOUT` seconds (a child process started in the
    block may still hold the pipe: the thread then goes on passing its lines to fd 2). An
    exception in the block propagates unchanged. Blocks nest; as fd 2 belongs to the process,
    blocks in two threads must nest too. Without a usable fd 2 the block runs unfiltered. A
    process killed outright (``abort()`` after a fatal C++ check) can lose the lines still in
    the pipe.
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        original = os.dup(2)
    except OSError:  # fd 2 is closed: nothing to filter
        original = -1
    if original < 0:
        yield
        return
    try:
        read_end, write_end = os.pipe()
    except OSError:
        os.close(original)
        raise
    _enlarge(write_end)
    forwarder = _Forwarder(read_end, os.dup(original), noise, on_line)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    python_stderr, ours = sys.stderr, None
    try:
        if _fileno(python_stderr) == 2:
            ours = open(  # noqa: SIM115 (closed when the block ends)
                os.dup(original),
                "w",
                buffering=1,
                encoding=getattr(python_stderr, "encoding", None) or "utf-8",
                errors=getattr(python_stderr, "errors", None) or "backslashreplace",
            )
            sys.stderr = ours
        yield
    finally:
        os.dup2(original, 2)  # the pipe's last write end in this process: the thread sees its end
        os.close(original)
        if ours is not None and sys.stderr is ours:  # not if the block left its own in place
            sys.stderr = python_stderr
            ours.close()
        forwarder.finish(JOIN_TIMEOUT)


@contextlib.contextmanager
def progress_safe_stderr_fd(
    noise: re.Pattern[str], print_line: Callable[[str], object] | None = None
) -> Iterator[None]:
    """:func:`filtered_stderr_fd` for long work under a progress bar.

    Every line that is not noise goes, without its newline, to ``print_line`` (default: written
    to ``sys.stderr``), which for a bar prints it on a line of its own above the bar (the
    training loop passes :meth:`edgecnn.train.callbacks.ProgressBar.print_line`). libjpeg's
    warnings about a damaged JPEG (:data:`LIBJPEG_WARNING`) come once per distinct message,
    as ``warning: libjpeg: Corrupt JPEG data: ...``, and at the end of the block once more
    with their count if they were repeated. Enter it before the bar, so that the bar (and
    Python's own writes, which rich sends above it) draws on the stream it puts in place.
    """
    counts: Counter[str] = Counter()

    def show(text: str) -> None:
        if print_line is None:
            sys.stderr.write(f"{text}\n")
        else:
            print_line(text)

    def on_line(line: str) -> None:
        text = line.rstrip("\r\n")
        if LIBJPEG_WARNING.match(text):
            counts[text] += 1
            if counts[text] > 1:
                return
            text = f"warning: libjpeg: {text}"
        show(text)

    try:
        with filtered_stderr_fd(noise, on_line=on_line):
            yield
    finally:
        for text, n in list(counts.items()):
            if n > 1:
                show(f"warning: libjpeg: {text} ({n} times)")


class _Forwarder(threading.Thread):
    """Reads the pipe behind fd 2 and passes on the lines that are not noise; owns both fds."""

    def __init__(
        self, read_fd: int, out_fd: int, noise: re.Pattern[str], on_line: Callable[[str], object] | None
    ) -> None:
        super().__init__(name="edgecnn-stderr-filter", daemon=True)
        self._read_fd, self._out_fd, self._noise = read_fd, out_fd, noise
        self.on_line = on_line

    def finish(self, timeout: float) -> None:
        """Wait for the pipe's end; later lines (a child still holding it) skip ``on_line``."""
        try:
            self.join(timeout)
        finally:
            self.on_line = None

    def run(self) -> None:
        pending, since = b"", 0.0  # a line still without its newline, and when it began
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._read_fd, selectors.EVENT_READ)
                while True:
                    if pending:
                        wait = since + PARTIAL_LINE_WAIT - time.monotonic()
                        if not selector.select(max(wait, 0.0)):
                            self._forward(pending)
                            pending = b""
                            continue
                    chunk = os.read(self._read_fd, 1 << 16)
                    if not chunk:
                        break
                    lines, newline, rest = (pending + chunk).rpartition(b"\n")
                    if newline:
                        for line in lines.split(b"\n"):
                            self._forward(line + b"\n")
                    if newline or not pending:
                        since = time.monotonic()
                    pending = rest
            if pending:
                self._forward(pending)
        finally:
            os.close(self._read_fd)
            os.close(self._out_fd)

    def _forward(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        if self._noise.search(text):
            return
        on_line = self.on_line
        # Skipped while sys.stderr writes to fd 2 itself (someone set it back to
        # sys.__stderr__): a callback printing there would feed its lines back into the pipe.
        if on_line is not None and _fileno(sys.stderr) != 2:
            try:
                on_line(text)
                return
            except Exception:
                pass  # the line still reaches the user, below
        with contextlib.suppress(OSError):  # stderr gone (a closed terminal): keep draining the pipe
            while line:
                line = line[os.write(self._out_fd, line) :]


def _enlarge(pipe_fd: int) -> None:
    """Give the pipe 1 MiB (Linux) so that a burst of lines does not block its writers."""
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl

        fcntl.fcntl(pipe_fd, fcntl.F_SETPIPE_SZ, 1 << 20)


def _fileno(stream: Any) -> int | None:
    """The file descriptor a stream writes to, or None (no stream, or not on a descriptor)."""
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
