"""Deploy one bundle to many boards at once, and sum up.

Boards run in a thread pool (``parallel`` at a time); each board's steps are
:class:`~edgecnn.deploy.remote.BoardDeploy`, and a board's failure never stops the others.
Ctrl-C stops every board's ssh commands and raises :class:`DeployInterruptedError` with one
result per board: finished, ``left as it was`` or ``interrupted`` after its switch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from pathlib import Path

from edgecnn.deploy.bundle_info import BundleInfo, read_bundle
from edgecnn.deploy.hosts import Host
from edgecnn.deploy.remote import INTERRUPTED, LEFT_AS_IT_WAS, BoardDeploy, BoardResult, DeployOptions
from edgecnn.deploy.ssh import ssh_program

__all__ = ["BoardResult", "DeployInterruptedError", "DeployOptions", "deploy", "format_summary"]


class DeployInterruptedError(KeyboardInterrupt):
    """Ctrl-C during :func:`deploy`; ``results`` says, per board, how far it got. The message
    counts the boards left as they were and those cut off after their switch."""

    def __init__(self, results: list[BoardResult]) -> None:
        self.results = results
        left = sum(r.outcome == LEFT_AS_IT_WAS for r in results)
        cut = sum(r.outcome == INTERRUPTED for r in results)
        done = len(results) - left - cut
        super().__init__(
            f"{done} board(s) finished, {left} left as they were, {cut} cut off after the switch "
            "(deploy again to check them)"
        )


def deploy(
    bundle: Path | BundleInfo,
    hosts: Sequence[Host],
    options: DeployOptions | None = None,
    parallel: int = 4,
    log: Callable[[str], None] = print,
) -> list[BoardResult]:
    """Deploy ``bundle`` to every host, ``parallel`` boards at a time; one result per host, in
    the order given.

    Raises:
        UserError: the bundle is not an edgecnn bundle, or there is no ssh client (before any
            board is touched).
        DeployInterruptedError: Ctrl-C (a KeyboardInterrupt); every board's ssh commands were
            stopped and its result says how far it got.
    """
    info = bundle if isinstance(bundle, BundleInfo) else read_bundle(bundle)
    ssh_program()
    options = options or DeployOptions()
    lock = threading.Lock()

    def locked_log(line: str) -> None:
        with lock:
            log(line)

    locked_log(f"deploying {info.name} {info.version} ({info.size / 1e6:.1f} MB) to {len(hosts)} board(s)")
    cancel = threading.Event()
    jobs = [BoardDeploy(host, info, options, locked_log, cancel) for host in hosts]
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts))))
    futures = [pool.submit(job.run) for job in jobs]
    interrupted = False
    while True:
        try:
            if not interrupted:
                wait_for(futures)
            pool.shutdown(wait=True, cancel_futures=interrupted)
            break
        except KeyboardInterrupt:  # again and again if need be: the threads end soon now
            interrupted = True
            for job in jobs:
                job.ssh.stop()
    results = []
    for job, future in zip(jobs, futures, strict=True):
        if future.cancelled():  # still queued: never started
            job.result.outcome, job.result.reason = LEFT_AS_IT_WAS, "interrupted before it started"
            job.result.step = "connect"
            results.append(job.result)
        else:
            results.append(future.result())
    if interrupted:
        raise DeployInterruptedError(results)
    return results


def format_summary(results: Sequence[BoardResult]) -> str:
    """The table printed at the end: one line per board with outcome, release and times."""
    header = ("board", "outcome", "release", "upload", "install", "health", "total", "reason")
    rows = [header]
    for r in results:
        s = r.seconds
        rows.append(
            (
                r.host,
                r.outcome,
                r.current or "-",
                f"{s['upload']:.0f}s" if "upload" in s else "-",
                f"{s['install']:.0f}s" if "install" in s else "-",
                f"{s['health']:.0f}s" if "health" in s else "-",
                f"{s.get('total', 0):.0f}s",
                r.reason or r.status,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    ok = sum(r.ok for r in results)
    already = sum(r.outcome == "already running" for r in results)
    lines.append(
        f"{ok} of {len(results)} board(s) deployed" + (f" ({already} already running it)" if already else "")
    )
    return "\n".join(line.rstrip() for line in lines)
