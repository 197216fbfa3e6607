"""SIGTERM and SIGINT: the first asks the daemon to stop cleanly, a second one ends it at once.

systemd stops a service with SIGTERM (then SIGKILL after ``TimeoutStopSec=``); Ctrl-C
sends SIGINT. The first one calls ``stop(reason)``: the loop finishes the frame in
flight, flushes the sinks, releases the camera and exits 0 within a few seconds. A second
one exits at once with ``128 + signal number``, as shells report it.
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


@contextmanager
def stop_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """Within the block, SIGTERM / SIGINT call ``stop("SIGTERM")``; the old handlers come back after.

    Outside the main thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if received:
            os.write(2, f"edgecnn: {name} again: exiting now\n".encode())
            os._exit(128 + signum)
        received.append(signum)
        log.info("%s: stopping", name)
        stop(name)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
