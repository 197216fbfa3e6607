"""``sd_notify`` for ``Type=notify`` services, without libsystemd or the systemd package.

The protocol (``man sd_notify``): systemd puts a socket path in ``$NOTIFY_SOCKET``; the
service sends it datagrams of newline-separated ``KEY=value`` assignments. A path that
starts with ``@`` is an abstract socket (the ``@`` stands for a leading NUL byte). The
daemon sends

* ``READY=1`` once the model is loaded and ran once (systemd then counts the unit started);
* ``WATCHDOG=1`` from its main loop every half ``$WATCHDOG_USEC`` (``WatchdogSec=``), only
  while the loop is alive: a stalled loop stops pinging and systemd restarts the service;
* ``STATUS=...`` with the pings (``running: 14.9 fps`` or ``camera offline: ...``);
* ``STOPPING=1`` when it begins to shut down.

``$WATCHDOG_PID``, when set, must be this process's pid, as ``sd_watchdog_enabled`` checks.
Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Send ``sd_notify`` messages to the service manager.

    Args:
        address: the ``$NOTIFY_SOCKET`` value (None: notifications off).
        watchdog_usec: the ``$WATCHDOG_USEC`` value (None or 0: no watchdog).

    Example:
        >>> notifier = Notifier.from_env()
        >>> notifier.ready("running")
        False
    """

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        #: seconds between watchdog pings (half the watchdog timeout), or None
        self.watchdog_interval = watchdog_usec / 2e6 if watchdog_usec else None
        self._socket: socket.socket | None = None
        self._last_ping: float | None = None
        self.sent = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """Read ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        usec: int | None = None
        pid = env.get("WATCHDOG_PID", "")
        if env.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"])
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments as one datagram; False if off or it could not be sent."""
        if self.address is None or not assignments:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(assignments).encode(), socket.MSG_DONTWAIT, target)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        """``READY=1`` (and ``STATUS=``); the first watchdog interval starts now."""
        self._last_ping = time.monotonic()
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        """``STATUS=text``: what ``systemctl status`` shows."""
        return self.send(*_status(text))

    def watchdog_due(self, now: float | None = None) -> bool:
        """True when a watchdog ping is due (half the watchdog timeout since the last one)."""
        if self.watchdog_interval is None or self.address is None:
            return False
        now = time.monotonic() if now is None else now
        return self._last_ping is None or now - self._last_ping >= self.watchdog_interval

    def watchdog(self, status: str = "") -> bool:
        """``WATCHDOG=1`` (and ``STATUS=`` if given): the loop is alive."""
        self._last_ping = time.monotonic()
        return self.send("WATCHDOG=1", *_status(status))

    def stopping(self, status: str = "stopping") -> bool:
        """``STOPPING=1``: the service is shutting down."""
        return self.send("STOPPING=1", *_status(status))

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status(text: str) -> tuple[str, ...]:
    text = " ".join(text.split())  # one line: a newline would start a new assignment
    return (f"STATUS={text}",) if text else ()
