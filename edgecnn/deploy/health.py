"""Is the service healthy? Judged from ``systemctl show`` on the board, the daemon unchanged.

The daemon is a ``Type=notify`` service with a watchdog (docs/daemon.md, "Health"): systemd
marks it ``active`` only after ``READY=1``, which the daemon sends once the model is loaded
and ran once; then its main loop sends ``WATCHDOG=1`` every ``WatchdogSec/2`` (15 s) with a
``STATUS=`` line such as ``running: 2.0 fps, 31 frames``, and only while every stage of the
pipeline is alive. systemd keeps the time of the last ping (``WatchdogTimestampMonotonic``),
the status line (``StatusText``), the run's ``InvocationID`` and the automatic restarts
(``NRestarts``). So a restarted service is **healthy** when, within the health timeout:

1. a new run has started (another ``InvocationID`` than before the restart),
2. it is ``active (running)``: READY came, the model ran on this board,
3. a watchdog ping came *after* it became active (the main loop and its stages run), and
4. its status reports frames processed (``running: ... N frames`` with N >= 1),

and throughout it was neither restarted (same ``InvocationID``, same ``NRestarts``) nor
failed. A ``failed`` state or a restart ends the check at once.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

SERVICE = "edgecnn-detect.service"

#: The properties :class:`HealthCheck` reads (``systemctl show -p ...``).
PROPERTIES = (
    "ActiveState",
    "SubState",
    "Result",
    "ExecMainCode",
    "ExecMainStatus",
    "MainPID",
    "NRestarts",
    "InvocationID",
    "StatusText",
    "WatchdogTimestampMonotonic",
)

_FRAMES = re.compile(r"running: [0-9.]+ fps, (\d+) frames")


def show_command(unit: str = SERVICE) -> str:
    """The shell command printing the properties as ``Key=value`` lines."""
    return f"systemctl show {unit} " + " ".join(f"-p {name}" for name in PROPERTIES)


def parse_show(text: str) -> dict[str, str]:
    """``Key=value`` lines of ``systemctl show`` as a dict."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def frames_in_status(status: str) -> int | None:
    """The frame count of a ``running: 2.0 fps, 31 frames`` status, or None."""
    match = _FRAMES.search(status)
    return int(match.group(1)) if match else None


def how_it_ended(props: dict[str, str]) -> str:
    """systemd's ``Result`` with the main process's exit status or signal: ``exit-code, exit
    status 2``, ``signal, SIGSEGV``, ``core-dump, SIGABRT``, ``watchdog, SIGABRT``..."""
    result, status = props.get("Result", "?"), props.get("ExecMainStatus", "?")
    if props.get("ExecMainCode") in ("2", "3") and status.isdigit():  # CLD_KILLED, CLD_DUMPED
        try:
            return f"{result}, {signal.Signals(int(status)).name}"
        except ValueError:
            return f"{result}, signal {status}"
    return f"{result}, exit status {status}"


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def running_healthy(props: dict[str, str]) -> tuple[bool, str]:
    """Judge a service that was not restarted, from one sample: healthy when it is ``active
    (running)`` (READY came), systemd has had a watchdog ping from it, and its status counts
    frames processed. Returns the verdict and the status (or what is missing)."""
    state, sub = props.get("ActiveState", ""), props.get("SubState", "")
    status = props.get("StatusText", "")
    if state != "active" or sub != "running":
        return False, f"{state or 'unknown'}/{sub or 'unknown'}"
    if not _int(props.get("WatchdogTimestampMonotonic")):
        return False, "no watchdog ping yet"
    if not frames_in_status(status):
        return False, f"no frames processed ({status or 'no status'})"
    return True, status


@dataclass
class HealthCheck:
    """Feed :meth:`observe` one ``systemctl show`` sample after another.

    Args:
        old_invocation: the unit's ``InvocationID`` before the restart ('' if it never ran).
    """

    old_invocation: str
    invocation: str | None = None
    restarts: int | None = None
    active_watchdog: int | None = None
    last: dict[str, str] = field(default_factory=dict)

    def observe(self, props: dict[str, str]) -> tuple[str, str]:
        """Judge one sample: ``("healthy", status)``, ``("failed", why)`` or ``("wait", state)``."""
        self.last = props
        state, sub = props.get("ActiveState", ""), props.get("SubState", "")
        invocation = props.get("InvocationID", "")
        status = props.get("StatusText", "")
        if state == "failed":
            return "failed", f"the service failed ({how_it_ended(props)})"
        if not invocation or invocation == self.old_invocation:
            return "wait", f"waiting for the service to restart ({state}/{sub})"
        restarts = _int(props.get("NRestarts"))
        if self.invocation is None:
            self.invocation, self.restarts = invocation, restarts
        elif invocation != self.invocation or (self.restarts is not None and restarts > self.restarts):
            return "failed", f"the service restarted by itself (NRestarts={restarts}): it does not stay up"
        if sub == "auto-restart":
            ended = how_it_ended(props)
            return "failed", f"the service exited ({ended}) and systemd is restarting it: it does not stay up"
        if state != "active" or sub != "running":
            return "wait", f"{state}/{sub}" + (f": {status}" if status else "")
        watchdog = _int(props.get("WatchdogTimestampMonotonic"))
        if self.active_watchdog is None:
            self.active_watchdog = watchdog
            return "wait", f"active, waiting for a watchdog ping: {status}"
        frames = frames_in_status(status)
        if watchdog > self.active_watchdog and frames:
            return "healthy", status
        return "wait", f"active, waiting for a watchdog ping with frames: {status or 'no status'}"

    def timeout_reason(self, seconds: float) -> str:
        """Why the check ran out of time, from the last sample."""
        props = self.last
        state = f"{props.get('ActiveState', '?')}/{props.get('SubState', '?')}"
        status = props.get("StatusText") or "no status"
        return f"not healthy within {seconds:.0f} s ({state}, status: {status})"
