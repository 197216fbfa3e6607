"""Drive the emulated Raspberry Pi from Python: build, boot, run commands, copy files, stop.

A thin wrapper over the scripts next to it (``build.sh``, ``boot.sh``, ``exec.sh``,
``stop.sh``), for tests and tools::

    import sys; sys.path.insert(0, "deploy/testbed")
    from board import Board

    with Board(name="demo", port=2222) as pi:          # boots a fresh instance, stops it after
        pi.run("uname -m").stdout                       # 'aarch64\\n' (root, through nsenter)
        pi.ssh("sudo -n true")                          # as the pi user, over ssh with its key
        path = pi.put(Path("bundle.tar.gz"))            # -> '/mnt/host/bundle.tar.gz' on the board

Everything needs root on the host (mounts, binfmt_misc, systemd-nspawn). The root filesystem
is cached in ``$EDGECNN_TESTBED_CACHE`` (default ``/var/cache/edgecnn-testbed``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOARD_USER = "pi"
SHARE_ON_BOARD = "/mnt/host"


class TestbedError(RuntimeError):
    """A testbed script failed; the message ends with its last output lines."""


def cache_dir() -> Path:
    """Where the root filesystem, the ssh key and the instances live."""
    return Path(os.environ.get("EDGECNN_TESTBED_CACHE", "/var/cache/edgecnn-testbed"))


def root_stamp() -> dict[str, str] | None:
    """The cached root filesystem's stamp (``version``, ``built``, ``python``, ``build_seconds``
    ...), or None when it is not built."""
    stamp = cache_dir() / "bookworm-arm64" / ".edgecnn-testbed-stamp"
    if not stamp.is_file():
        return None
    return dict(line.split("=", 1) for line in stamp.read_text().splitlines() if "=" in line)


def _script(name: str, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", str(HERE / name), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr + proc.stdout).strip().splitlines()[-5:])
        raise TestbedError(f"{name} {' '.join(args)} failed (exit {proc.returncode}): {tail}")
    return proc


def build(rebuild: bool = False) -> float:
    """Build the root filesystem unless it is cached; return the seconds it took."""
    started = time.perf_counter()
    _script("build.sh", *(["--rebuild"] if rebuild else []))
    return time.perf_counter() - started


@dataclass
class Board:
    """One instance of the emulated board.

    Args:
        name: instance name (its overlay and share directory are kept per name).
        addr: loopback address of its sshd.
        port: port of its sshd.
        fresh: throw away the instance's earlier changes when booting.
    """

    name: str = "board"
    addr: str = "127.0.0.2"
    port: int = 2222
    fresh: bool = True

    @property
    def directory(self) -> Path:
        """The instance's directory on the host."""
        return cache_dir() / "instances" / self.name

    @property
    def share(self) -> Path:
        """Host side of the directory mounted at ``/mnt/host`` on the board."""
        return self.directory / "share"

    @property
    def key(self) -> Path:
        """The private ssh key of the ``pi`` user."""
        return cache_dir() / "id_ed25519"

    def boot(self, timeout: float = 600) -> float:
        """Boot (a fresh instance unless ``fresh`` is False); return the seconds until systemd and
        sshd were up."""
        started = time.perf_counter()
        args = [
            "--name",
            self.name,
            "--addr",
            self.addr,
            "--port",
            str(self.port),
            "--timeout",
            str(int(timeout)),
        ]
        _script("boot.sh", *args, *(["--fresh"] if self.fresh else []))
        return time.perf_counter() - started

    def stop(self, discard: bool = False) -> None:
        """Stop at once (no clean poweroff) and unmount; ``discard`` deletes the instance's changes."""
        _script("stop.sh", "--name", self.name, "--fast", *(["--discard"] if discard else []))

    def running(self) -> bool:
        """True when the instance's systemd-nspawn is alive."""
        pid_file = self.directory / "nspawn.pid"
        if not pid_file.is_file():
            return False
        try:
            os.kill(int(pid_file.read_text()), 0)
        except (OSError, ValueError):
            return False
        return True

    def run(
        self,
        command: str | list[str],
        user: str | None = None,
        check: bool = True,
        timeout: float | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on the board (a string goes through ``sh -c``), as root or ``user``.

        Raises:
            TestbedError: ``check`` and a non-zero exit code (with the output's last lines).
        """
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        full = [
            "bash",
            str(HERE / "exec.sh"),
            "--name",
            self.name,
            *(["--user", user] if user else []),
            "--",
            *argv,
        ]
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input, check=False)
        if check and proc.returncode != 0:
            tail = " | ".join((proc.stderr + proc.stdout).strip().splitlines()[-8:])
            raise TestbedError(f"on the board: {command!r} exited {proc.returncode}: {tail}")
        return proc

    def ssh_command(self, command: str) -> list[str]:
        """The host's ``ssh`` command line that runs ``command`` as ``pi`` on the board."""
        options = [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ]
        options += ["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30"]
        return [
            "ssh",
            "-i",
            str(self.key),
            "-p",
            str(self.port),
            *options,
            f"{BOARD_USER}@{self.addr}",
            command,
        ]

    def ssh(
        self, command: str, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command as ``pi`` over ssh (the way a deploy tool reaches a real Pi)."""
        proc = subprocess.run(
            self.ssh_command(command), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            tail = " | ".join((proc.stderr + proc.stdout).strip().splitlines()[-8:])
            raise TestbedError(f"ssh {command!r} exited {proc.returncode}: {tail}")
        return proc

    def put(self, source: Path, name: str | None = None) -> str:
        """Copy a host file into the share; return its path on the board."""
        self.share.mkdir(parents=True, exist_ok=True)
        dest = self.share / (name or source.name)
        shutil.copyfile(source, dest)
        return f"{SHARE_ON_BOARD}/{dest.name}"

    def host_path(self, board_path: str) -> Path:
        """Where a file of the board's root filesystem is seen from the host (the overlay, while
        the instance runs)."""
        return self.directory / "merged" / board_path.lstrip("/")

    def quote(self, *parts: str) -> str:
        """Shell-quote words for :meth:`run` and :meth:`ssh` strings."""
        return " ".join(shlex.quote(p) for p in parts)

    def __enter__(self) -> Board:
        self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
