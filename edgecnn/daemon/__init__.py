"""The board-side daemon: source -> runtime -> postprocess -> sinks, under systemd.

* :mod:`~edgecnn.daemon.startup`: :func:`run_daemon` and :func:`check_config`; the start-up
  work done before numpy, OpenCV and the interpreter are imported.
* :mod:`~edgecnn.daemon.loop`: :class:`Daemon`, the pipelined loop.
* :mod:`~edgecnn.daemon.state`: :class:`DaemonStats`, the live state sinks read.
* :mod:`~edgecnn.daemon.notify`: ``sd_notify`` (READY, WATCHDOG, STATUS) without libsystemd.
* :mod:`~edgecnn.daemon.signals`: SIGTERM / SIGINT to a clean stop, SIGHUP to reopen output
  files, :func:`~edgecnn.daemon.signals.request_stop` for a sink whose output is gone.

Never imports TensorFlow. Names are imported on first use (PEP 562), so that importing
:mod:`edgecnn.daemon.state` from a sink stays light.
"""

from __future__ import annotations

from edgecnn._lazy import lazy_exports

_EXPORTS = {
    "Daemon": "edgecnn.daemon.loop",
    "run_daemon": "edgecnn.daemon.startup",
    "check_config": "edgecnn.daemon.startup",
    "DaemonStats": "edgecnn.daemon.state",
    "Health": "edgecnn.daemon.state",
    "Notifier": "edgecnn.daemon.notify",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
