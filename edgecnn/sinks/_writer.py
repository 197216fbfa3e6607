"""A bounded queue and the one thread that writes what it holds, for sinks that write files.

``emit`` runs on the daemon's finish thread and must not wait for a disk: it puts the item
into the queue (:meth:`QueueWriter.put`) and returns. The writer thread calls ``write`` on
each item in order; a write that raises ``OSError`` or ``ValueError`` (a full disk, an image
that cannot be encoded) is counted in ``failed`` and logged once per outage
(:class:`~edgecnn.sinks._outage.Outage`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from edgecnn.sinks._outage import Outage

log = logging.getLogger(__name__)

_STOP = object()


class QueueWriter:
    """Write queued items on a thread of their own.

    Args:
        name: the thread's name; also starts the "writer stuck" warning.
        write: writes one item; raises ``OSError`` or ``ValueError`` when it cannot.
        outage: logs the failures of ``write``.
        queue_size: items that may wait.

    Attributes:
        failed: items whose write raised.
    """

    def __init__(self, name: str, write: Callable[[Any], None], outage: Outage, queue_size: int) -> None:
        self.name = name
        self.failed = 0
        self._write = write
        self._outage = outage
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def put(self, item: object, timeout: float = 0.0) -> bool:
        """Queue ``item``, waiting up to ``timeout`` seconds for room; False when there was none."""
        try:
            if timeout > 0:
                self._queue.put(item, timeout=timeout)
            else:
                self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def stop(self, timeout: float = 2.0, per_item: float = 0.0) -> None:
        """Write what is queued and end the thread, waiting ``timeout`` seconds plus
        ``per_item`` for each item still queued; a thread stuck in the file system is left."""
        if self._thread is None:
            return
        pending = self._queue.qsize()
        if not self.put(_STOP, timeout):
            log.warning("%s: writer stuck; %d items not written", self.name, self._queue.qsize())
        self._thread.join(timeout + pending * per_item)
        self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                self._write(item)
            except (OSError, ValueError) as exc:
                self._outage.failed(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
                self.failed += 1
            else:
                self._outage.worked()
