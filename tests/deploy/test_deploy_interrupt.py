"""Ctrl-C during a multi-board deploy, with the real ssh client: one line per board, exit 130.

The "boards" are a local TCP port that accepts connections and never answers, so every ssh call
hangs in its handshake, as a deploy hangs on slow boards; the test then sends SIGINT to the
command's process group, as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def silent_port() -> Iterator[tuple[int, list[socket.socket]]]:
    """A listening port that accepts connections and never says a word; the accepted ones."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for conn in accepted:
        conn.close()


def test_ctrl_c_reports_every_board_and_exits_130(
    fake_bundle: Path, tmp_path: Path, silent_port: tuple[int, list[socket.socket]]
) -> None:
    port, accepted = silent_port
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    hosts = [f"pi@127.0.0.1:{port}", f"pi@localhost:{port}", f"op@127.0.0.1:{port}"]
    command = [sys.executable, "-m", "edgecnn", "deploy", str(fake_bundle), *hosts, "--parallel", "2"]
    command += ["--known-hosts", str(known_hosts), "--json"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while len(accepted) < 2 and time.monotonic() < deadline:  # both running boards are connecting
        time.sleep(0.05)
    assert len(accepted) == 2
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole foreground group
    stdout, stderr = proc.communicate(timeout=30)
    ended = time.monotonic() - started
    assert proc.returncode == 130, stderr
    assert "exit code 255" not in stderr and "Traceback" not in stderr, stderr
    assert ended < 5, ended
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["ok"] is False
    outcomes = [(b["host"], b["outcome"], b["step"], b["reason"]) for b in summary["boards"]]
    assert outcomes == [
        (
            hosts[0],
            "left as it was",
            "connect",
            "interrupted during the connect step, before anything was switched",
        ),
        (
            hosts[1],
            "left as it was",
            "connect",
            "interrupted during the connect step, before anything was switched",
        ),
        (hosts[2], "left as it was", "connect", "interrupted before it started"),
    ]
    lines = stderr.splitlines()
    table = lines[lines.index(next(ln for ln in lines if ln.startswith("board "))) + 1 :]
    assert [ln.split("  ")[0] for ln in table[:3]] == hosts
    assert all("left as it was" in ln for ln in table[:3])
    assert lines[-1] == (
        "edgecnn: interrupted: 0 board(s) finished, 3 left as they were, 0 cut off after the switch "
        "(deploy again to check them)"
    )
