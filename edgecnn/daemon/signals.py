"""Signals, and stop requests from the daemon's own threads.

SIGTERM and SIGINT: systemd stops a service with SIGTERM (then SIGKILL after
``TimeoutStopSec=``); Ctrl-C sends SIGINT. The first one calls ``stop(reason)``: the loop
finishes the frame in flight, flushes the sinks, releases the camera and exits 0 within a
few seconds. A second one exits at once with ``128 + signal number``, as shells report it.

SIGHUP (logrotate's ``postrotate``) does not stop anything: it counts a request to reopen
output files (:func:`reopen_requests`), which sinks that append to files check before
each write. The handlers only log and set flags; the sinks' own threads do the work.

:func:`request_stop` is how a sink asks the running daemon to stop cleanly when its
output is gone for good (stdout closed by ``| head``), or to stop as failed (exit code 1,
so that systemd's ``Restart=on-failure`` starts it again) when that output was the journal.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_reopen_requests = 0  # SIGHUPs received; only the signal handler writes it
_stop: Callable[..., None] | None = None  # the running daemon's stop, within stop_on_signals


def reopen_requests() -> int:
    """How many times SIGHUP asked to reopen output files (since the process started).

    A sink remembers the value when it opens its file and reopens when it changed; an int
    read is atomic, so any thread may call this.
    """
    return _reopen_requests


def request_stop(reason: str, *, failed: bool = False) -> bool:
    """Ask the running daemon to stop, as the first SIGTERM does (any thread may call it).

    Args:
        reason: what the daemon logs as the reason.
        failed: stop with exit code 1 instead of 0.

    Returns:
        False outside :func:`stop_on_signals` (no daemon to stop).
    """
    stop = _stop
    if stop is None:
        return False
    stop(reason, failed=failed)
    return True


@contextmanager
def stop_on_signals(stop: Callable[..., None]) -> Iterator[None]:
    """Within the block, SIGTERM / SIGINT call ``stop("SIGTERM")``, SIGHUP counts a reopen
    request and :func:`request_stop` calls ``stop(reason, failed=...)``; the old handlers
    come back after.

    Outside the main thread (where Python cannot install handlers) only :func:`request_stop`
    works.
    """
    global _stop
    previous_stop, _stop = _stop, stop
    try:
        if threading.current_thread() is threading.main_thread():
            with _handlers(stop):
                yield
        else:
            yield
    finally:
        _stop = previous_stop


@contextmanager
def _handlers(stop: Callable[[str], None]) -> Iterator[None]:
    """Install the SIGTERM / SIGINT / SIGHUP handlers for the block (main thread only)."""
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if received:
            os.write(2, f"edgecnn: {name} again: exiting now\n".encode())
            os._exit(128 + signum)
        received.append(signum)
        log.info("%s: stopping", name)
        stop(name)

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        global _reopen_requests
        _reopen_requests += 1
        log.info("SIGHUP: reopening output files before their next write")

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, hangup)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
