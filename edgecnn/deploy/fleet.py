"""Deploy one bundle to many boards at once, and sum up.

Boards run in a thread pool (``parallel`` at a time); each board's steps are
:class:`~edgecnn.deploy.remote.BoardDeploy`, and a board's failure never stops the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgecnn.deploy.bundle_info import BundleInfo, read_bundle
from edgecnn.deploy.hosts import Host
from edgecnn.deploy.remote import BoardResult, DeployOptions, deploy_board
from edgecnn.deploy.ssh import ssh_program

__all__ = ["BoardResult", "DeployOptions", "deploy", "format_summary"]


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
    """
    info = bundle if isinstance(bundle, BundleInfo) else read_bundle(bundle)
    ssh_program()
    options = options or DeployOptions()
    lock = threading.Lock()

    def locked_log(line: str) -> None:
        with lock:
            log(line)

    locked_log(f"deploying {info.name} {info.version} ({info.size / 1e6:.1f} MB) to {len(hosts)} board(s)")
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts)))) as pool:
        futures = [pool.submit(deploy_board, host, info, options, locked_log) for host in hosts]
        return [future.result() for future in futures]


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
    lines.append(f"{ok} of {len(results)} board(s) deployed")
    return "\n".join(line.rstrip() for line in lines)
