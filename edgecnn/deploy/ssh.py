"""A thin runner over the system ``ssh`` client, with strict host key checking.

Every call is ``ssh -o BatchMode=yes -o StrictHostKeyChecking=yes ...``: no password or
passphrase prompt, and an unknown or changed host key is refused (``accept_new`` allows a
first-seen key, as ``StrictHostKeyChecking=accept-new`` does, and still refuses a changed
one). ssh's own failures (exit code 255) become :class:`SshError` with one line that names
the host; host key refusals are :class:`HostKeyError` and say how to accept the key. Nothing
here prints key material or passwords; commands are logged by the caller, not here.
"""

from __future__ import annotations

import contextlib
import select
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from edgecnn.deploy.hosts import Host
from edgecnn.errors import EdgecnnError, UserError

SSH_FAILED = 255


class SshError(EdgecnnError):
    """ssh itself failed: no connection, login refused, host key refused."""


class HostKeyError(SshError):
    """The board's host key is unknown or changed: refused, with how to accept it."""


class InterruptError(SshError):
    """The deploy was interrupted (Ctrl-C): the command was stopped, or not started."""


@dataclass(frozen=True)
class SshOptions:
    """How to reach the boards.

    Args:
        identity: private key file (``ssh -i``); None: ssh's defaults and agent.
        known_hosts: known_hosts file to check against (and to add accepted keys to); None:
            the user's ``~/.ssh/known_hosts``.
        accept_new: accept (and remember) the key of a host seen for the first time; a changed
            key is still refused.
        connect_timeout: seconds to wait for a connection.
    """

    identity: Path | None = None
    known_hosts: Path | None = None
    accept_new: bool = False
    connect_timeout: int = 20


@dataclass(frozen=True)
class Completed:
    """A finished remote command."""

    returncode: int
    stdout: str
    stderr: str


def ssh_program() -> str:
    """The ``ssh`` client's path.

    Raises:
        UserError: there is none (install openssh-client).
    """
    found = shutil.which("ssh")
    if found is None:
        raise UserError("ssh not found: install the OpenSSH client (apt-get install openssh-client)")
    return found


class Ssh:
    """Run commands on one board through the system ssh client.

    Args:
        host: the board.
        options: identity, known_hosts and host key policy.

    Example:
        >>> Ssh(Host("raspberrypi.local", "pi"), SshOptions()).run("uname -m").stdout  # doctest: +SKIP
        'aarch64\\n'
    """

    def __init__(self, host: Host, options: SshOptions, cancel: threading.Event | None = None) -> None:
        self.host = host
        self.options = options
        #: once set (Ctrl-C), no command starts and a running one ends as :class:`InterruptError`
        self.cancel = cancel or threading.Event()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def argv(self, command: str) -> list[str]:
        """The full ssh command line that runs ``command`` (a shell string) on the board."""
        opts = self.options
        policy = "accept-new" if opts.accept_new else "yes"
        argv = [ssh_program(), "-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={policy}"]
        argv += ["-o", f"ConnectTimeout={opts.connect_timeout}", "-o", "ServerAliveInterval=15"]
        argv += ["-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"]
        if opts.known_hosts is not None:
            argv += ["-o", f"UserKnownHostsFile={opts.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if opts.identity is not None:
            argv += ["-i", str(opts.identity), "-o", "IdentitiesOnly=yes"]
        if self.host.port is not None:
            argv += ["-p", str(self.host.port)]
        return [*argv, "--", self.host.destination, command]

    def run(
        self,
        command: str,
        *,
        stdin: BinaryIO | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> Completed:
        """Run a shell command on the board; ``stdin``, if given, is streamed to it.

        Raises:
            HostKeyError: the host key is unknown or changed.
            SshError: ssh could not connect or log in, timed out, or (``check``) the command
                exited non-zero (with its last output lines).
        """
        proc = self.start(command, stdin=stdin if stdin is not None else subprocess.DEVNULL)
        out, err = self._wait(proc, timeout)
        return self._completed(command, proc.returncode, out, err, check)

    def _wait(self, proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
        """``proc``'s output once it ended (killed after ``timeout`` seconds: :class:`SshError`);
        it is forgotten either way."""
        try:
            return proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SshError(f"{self.host}: no answer within {timeout:.0f} s") from None
        finally:
            self.forget(proc)

    def _completed(self, command: str, code: int, out: bytes, err: bytes, check: bool) -> Completed:
        if self.cancel.is_set():  # ssh was stopped by us: not a failure of the board's
            raise InterruptError(f"{self.host}: interrupted")
        result = Completed(code, out.decode(errors="replace"), err.decode(errors="replace"))
        if result.returncode == SSH_FAILED:
            raise ssh_failure(self.host, result.stderr, self.options)
        if check and result.returncode != 0:
            raise SshError(f"{self.host}: {command_name(command)} failed: {last_lines(result)}")
        return result

    def start(self, command: str, stdin: int | BinaryIO | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
        """Start ssh running ``command`` and return at once (stdout and stderr are pipes); end it
        with :meth:`forget`. ssh runs in its own session, so a Ctrl-C in the terminal reaches
        only this program, which then stops it (:meth:`stop`) knowing why it ended.

        Raises:
            InterruptError: :attr:`cancel` is set.
        """
        with self._lock:
            if self.cancel.is_set():
                raise InterruptError(f"{self.host}: interrupted")
            proc = subprocess.Popen(
                self.argv(command),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._running.add(proc)
        return proc

    def hold(
        self,
        command: str,
        ready: str,
        timeout: float = 60,
        on_line: Callable[[str], bool] | None = None,
    ) -> subprocess.Popen[bytes] | Completed:
        """Start a long-lived ``command`` (a lock held until its stdin closes) and wait until it
        prints the line ``ready``: the running process, to be ended with :meth:`release`; or, if
        the command ended first, what it printed. Lines before ``ready`` go to ``on_line``
        (progress, such as waiting for a lock), which returns False for a line it does not
        expect: then the command's output is collected until it ends.

        Raises:
            HostKeyError, SshError: as :meth:`run`; also when ``ready`` does not come in time.
            InterruptError: :attr:`cancel` is set.
        """
        proc = self.start(command)
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                proc.kill()
                line = b""
                break
            line = proc.stdout.readline()
            text = line.decode(errors="replace").strip()
            if text == ready:
                return proc
            if not line or on_line is None or not on_line(text):
                break
        out, err = self._wait(proc, timeout)
        return self._completed(command, proc.returncode, line + out, err, check=False)

    def release(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
        """End a command started by :meth:`hold`: close its stdin and wait (kill it if it lingers)."""
        try:
            try:
                proc.communicate(timeout=timeout)  # closes its stdin first
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        finally:
            self.forget(proc)

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop tracking a finished ssh process."""
        with self._lock:
            self._running.discard(proc)

    def stop(self) -> None:
        """Interrupt: set :attr:`cancel` and end every ssh process still running (the remote
        commands lose their connection; a command already past its last step still finishes)."""
        with self._lock:
            self.cancel.set()
            running = list(self._running)
        for proc in running:
            with contextlib.suppress(OSError):
                proc.terminate()


def last_lines(result: Completed, count: int = 3) -> str:
    """The last non-empty lines of a command's output, joined with `` | ``."""
    lines = [ln.strip() for ln in (result.stdout + "\n" + result.stderr).splitlines() if ln.strip()]
    return " | ".join(lines[-count:]) or f"exit code {result.returncode}"


def command_name(command: str) -> str:
    """A short name for a remote command in messages: its first words."""
    words = shlex.split(command)[:3] if command else []
    return " ".join(words) or "command"


def ssh_failure(host: Host, stderr: str, options: SshOptions) -> SshError:
    """One clear line for an ssh failure (exit 255), from ssh's stderr."""
    text = stderr.strip()
    known = options.known_hosts or Path("~/.ssh/known_hosts")
    name = f"[{host.host}]:{host.port}" if host.port not in (None, 22) else host.host
    if "IDENTIFICATION HAS CHANGED" in text or "POSSIBLE DNS SPOOFING" in text:
        return HostKeyError(
            f"{host}: the host key has CHANGED since it was recorded in {known}; refusing to connect. "
            f"If the board was reinstalled, check its new key and remove the old one with "
            f"ssh-keygen -R '{name}' -f {known}"
        )
    if "Host key verification failed" in text or "host key is known" in text:
        return HostKeyError(
            f"{host}: the host key is not known (not in {known}); refusing to connect. Check the key "
            f"and add it (ssh-keyscan -p {host.port or 22} {host.host} >> {known}), or pass "
            "--accept-new-host-key to accept a first-seen key"
        )
    if "Permission denied" in text:
        return SshError(
            f"{host}: login refused ({text.splitlines()[-1]}); pass --identity KEY or load the key "
            "into ssh-agent"
        )
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return SshError(f"{host}: ssh failed: {lines[-1] if lines else 'exit code 255'}")
