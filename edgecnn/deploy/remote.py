"""One board's deploy: probe, upload, install, restart, health check, rollback, prune.

Everything on the board goes through :class:`~edgecnn.deploy.ssh.Ssh` as the login user, with
``sudo -n`` (passwordless sudo, never a password) for the installer, ``systemctl`` and
``journalctl``. The bundle's own ``install.py`` does the installing, switching and pruning
(docs/packaging.md); this module decides when, and judges the service afterwards
(:mod:`edgecnn.deploy.health`). docs/deploy.md walks through the steps.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import math
import re
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from edgecnn.deploy.bundle_info import BundleInfo
from edgecnn.deploy.health import SERVICE, HealthCheck, parse_show, running_healthy, show_command
from edgecnn.deploy.hosts import Host
from edgecnn.deploy.ssh import InterruptError, Ssh, SshError, SshOptions, last_lines

#: Staging directory on the board, below the login user's home: ``<sha256>.tar.gz`` (kept for
#: the next deploy, which then skips the upload) and ``<sha256>/`` (unpacked while deploying).
STAGE = ".cache/edgecnn-deploy"
PREFIX = "/opt/edgecnn"
#: Held (flock) by one deploy at a time on a board, from after the first look to the end.
LOCK = f"{PREFIX}/.deploy.lock"
LOCK_BUSY = 3
JOURNAL_LINES = 15
#: What :attr:`BoardResult.step` can name, in order.
STEPS = ("connect", "lock", "upload", "install", "switch", "health", "rollback", "prune")
#: Outcomes of a board whose deploy was cut off by Ctrl-C: before anything the running service
#: uses was changed, and after (the switch was sent).
LEFT_AS_IT_WAS, INTERRUPTED = "left as it was", "interrupted"

_SECRET = re.compile(r"(?i)(password|passwd|token|secret|api[_-]?key)(\W{1,3})\S+")
_AUTHORIZATION = re.compile(r"(?i)(authorization)(\W{1,3}).*")

Log = Callable[[str], None]


@dataclass(frozen=True)
class DeployOptions:
    """How to deploy, for every board.

    Args:
        ssh: identity, known_hosts and host key policy.
        health_timeout: seconds the restarted service has to become healthy.
        keep: complete releases to keep on the board (never the current or previous one).
        poll_interval: seconds between two looks at the service.
        force: deploy even when the board already runs this bundle, healthy (otherwise such a
            board is left alone and reported ``already running``).
        lock_timeout: seconds to wait for another deploy to the same board to finish (0:
            refuse at once).
    """

    ssh: SshOptions = field(default_factory=SshOptions)
    health_timeout: float = 60.0
    keep: int = 3
    poll_interval: float = 2.0
    force: bool = False
    lock_timeout: float = 0.0


@dataclass
class BoardResult:
    """What happened on one board.

    ``outcome`` is ``deployed`` (the new release runs healthy), ``already running`` (the
    board ran this very bundle, healthy: nothing was done), ``rolled back`` (the new release
    was not healthy; the previous release runs healthy again), ``failed`` (anything else;
    ``reason`` says what), or after a Ctrl-C ``left as it was`` (cut off before anything the
    running service uses was changed) or ``interrupted`` (cut off after the switch). ``step``
    names the step that failed or was cut off (:data:`STEPS`; None when none did).
    ``current`` is the release ``/opt/edgecnn/current`` points at in the end, if known.
    """

    host: str
    version: str
    outcome: str = "failed"
    reason: str = ""
    previous: str | None = None
    current: str | None = None
    status: str = ""
    uploaded_bytes: int = 0
    venv_from: str | None = None
    removed: list[str] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    step: str | None = None

    @property
    def ok(self) -> bool:
        """True when the new release is running and healthy."""
        return self.outcome in ("deployed", "already running")

    def to_dict(self) -> dict:
        """A JSON-ready dict (``--json``)."""
        return {**asdict(self), "ok": self.ok}


class StepError(Exception):
    """A deploy step failed on the board; the message is the reason."""


def redact(line: str) -> str:
    """A journal line with values after password/token/secret-like keys replaced by ``***``."""
    line = _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2)}***", line)
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", line)


class BoardDeploy:
    """The steps of one board's deploy (see :func:`deploy_board`)."""

    def __init__(
        self,
        host: Host,
        bundle: BundleInfo,
        options: DeployOptions,
        log: Log,
        cancel: threading.Event | None = None,
    ) -> None:
        self.host = host
        self.bundle = bundle
        self.options = options
        self.ssh = Ssh(host, options.ssh, cancel)
        self.result = BoardResult(host=str(host), version=bundle.version)
        self._log = log
        self.stage = ""
        self.installer = ""
        self.since = ""
        #: the release a failed health check switches back to (None: stop the service instead)
        self.rollback_to: str | None = None
        #: what ``previous`` names after that rollback: the link as found ('' to remove it)
        self.restore_previous = ""
        #: the step running now (:data:`STEPS`)
        self.step = "connect"
        #: True once the switch was sent: from then on the running service may have changed
        self.switched = False
        self._lock: subprocess.Popen[bytes] | None = None
        #: True once this deploy began to use the staging directory (to clean it up afterwards)
        self.staged = False

    def log(self, message: str) -> None:
        """Log ``message`` prefixed with the board's name."""
        self._log(f"{self.host}: {message}")

    def timed(self, name: str, started: float) -> None:
        """Record the seconds step ``name`` took since ``started`` (``time.monotonic``)."""
        self.result.seconds[name] = round(time.monotonic() - started, 1)

    def sudo(self, command: str, what: str, timeout: float | None = None) -> str:
        """Run ``sudo -n command``; its stdout, or :class:`StepError` with its last lines."""
        done = self.ssh.run(f"sudo -n {command}", timeout=timeout, check=False)
        if done.returncode != 0:
            errors = [ln for ln in done.stderr.splitlines() if "error:" in ln]
            raise StepError(f"{what} failed: {errors[-1].strip() if errors else last_lines(done)}")
        return done.stdout

    # -- the steps ---------------------------------------------------------------------------

    def probe(self) -> dict[str, str]:
        """Connect (host key check) and read the board's state; nothing is changed."""
        archive = f"{STAGE}/{self.bundle.sha256}.tar.gz"
        release = f"{PREFIX}/releases/{shlex.quote(self.bundle.version)}"
        script = "; ".join(
            [
                'echo "home=$HOME"',
                'echo "machine=$(uname -m)"',
                f'echo "current=$(readlink {PREFIX}/current 2>/dev/null)"',
                f'echo "previous=$(readlink {PREFIX}/previous 2>/dev/null)"',
                'echo "now=$(date +%s)"',
                f"if [ -f {archive} ]; then echo \"have=$(sha256sum {archive} | cut -d' ' -f1)\"; fi",
                "command -v python3 >/dev/null && echo python3=yes",
                "sudo -n true 2>/dev/null && echo sudo=yes",
                f'echo "installed=$(cat {PREFIX}/current/.installed 2>/dev/null)"',
                f'echo "release=$(cat {release}/.installed 2>/dev/null)"',
                f"{show_command()} 2>/dev/null",
                "true",  # the answers above say what is missing, not the exit code
            ]
        )
        facts = parse_show(self.ssh.run(script, timeout=60).stdout)
        if self.bundle.machine and facts.get("machine") != self.bundle.machine:
            raise StepError(f"the bundle is for {self.bundle.machine}; this board is {facts.get('machine')}")
        if facts.get("python3") != "yes":
            raise StepError("python3 is not installed on the board (the installer needs it)")
        if facts.get("sudo") != "yes":
            raise StepError(
                f"{self.host.user or 'the login user'} cannot run sudo without a password "
                "(deploy needs passwordless sudo: NOPASSWD in /etc/sudoers.d)"
            )
        current, before = _release(facts.get("current", "")), _release(facts.get("previous", ""))
        self.result.previous = self.result.current = current
        # Re-deploying the release that is already current (a retry after a deploy that was cut
        # off after its switch, say): roll back to the one before it, as the board's link names it.
        self.rollback_to = before if current == self.bundle.version else current
        if self.rollback_to == self.bundle.version:
            self.rollback_to = None
        # After a rollback ``previous`` must name the last good release, as it did before this
        # deploy; unknown when the board already ran the new release (then no ``previous``).
        self.restore_previous = (before or "") if current != self.bundle.version else ""
        if self.restore_previous == self.bundle.version:
            self.restore_previous = ""
        self.stage = f"{facts['home']}/{STAGE}"
        self.installer = shlex.quote(f"{self.stage}/{self.bundle.sha256}/{self.bundle.top}/install.py")
        self.since = facts.get("now", "")
        return facts

    def lock(self) -> None:
        """Take the board's deploy lock (``flock`` on :data:`LOCK`, held by a long-lived ssh
        command until the deploy ends): a second deploy to the board meanwhile waits up to
        ``lock_timeout`` seconds, then is refused with one line naming who holds it, instead of
        both changing the staging directory, the releases and the service at once."""
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name (a container): the host names the operator
            user = "someone"
        who = f"{user} on {socket.gethostname()}, deploying {self.bundle.version}"
        wait = max(0, math.ceil(self.options.lock_timeout))
        script = lock_script(LOCK, wait)
        command = f"sudo -n sh -c {shlex.quote(script)} deploy-lock {shlex.quote(who)}"

        def waiting(line: str) -> bool:
            if not line.startswith("waiting "):
                return False
            self.log(f"another deploy to this board is running ({line[8:]}): waiting up to {wait} s")
            return True

        held = self.ssh.hold(command, ready="locked", timeout=60 + wait, on_line=waiting)
        if isinstance(held, subprocess.Popen):
            self._lock = held
            return
        if held.returncode == LOCK_BUSY:
            holder = " ".join(held.stdout.split("busy", 1)[-1].split()) or "another edgecnn deploy"
            if wait:
                raise StepError(
                    f"another deploy to this board is still running after {wait} s ({holder}); "
                    "deploy again later or with a longer --lock-timeout"
                )
            raise StepError(
                f"another deploy to this board is running ({holder}); wait for it to finish and deploy "
                "again (or give --lock-timeout SECONDS to wait)"
            )
        raise StepError(f"cannot take the board's deploy lock {LOCK}: {last_lines(held)}")

    def unlock(self) -> None:
        """Release the deploy lock, if held."""
        if self._lock is not None:
            self.ssh.release(self._lock)
            self._lock = None

    def already_running(self, facts: dict[str, str]) -> bool:
        """True (and the result says so) when the board's current release is this very bundle
        (same version, same manifest digest) and its service runs healthy: nothing to do."""
        if self.options.force or not self.bundle.manifest_sha256:
            return False
        same = facts.get("installed") == self.bundle.manifest_sha256
        if self.result.current != self.bundle.version or not same:
            return False
        healthy, detail = running_healthy(facts)
        if not healthy:
            self.log(f"{self.bundle.version} is current but not healthy ({detail}): deploying it again")
            return False
        result = self.result
        result.outcome, result.status = "already running", detail
        result.reason = f"already running {self.bundle.version}"
        self.log(f"{result.reason}, healthy: {detail}; nothing to do (--force redeploys)")
        return True

    def clean_stage(self) -> None:
        """Remove everything from the staging directory but this bundle's archive (kept so that a
        re-deploy or a retry skips the upload): other bundles, unpacked files, a cut-off upload."""
        keep = shlex.quote(f"{self.bundle.sha256}.tar.gz")
        stage = shlex.quote(self.stage)
        command = f"find {stage} -mindepth 1 -maxdepth 1 ! -name {keep} -exec rm -rf {{}} +"
        self.ssh.run(command, timeout=120, check=False)

    def prepare_stage(self, facts: dict[str, str]) -> None:
        """Make the staging directory private to the login user (the bundle holds the device
        config and any password in it), clear it, and check, before uploading, that the archive
        and its unpacked files fit there and that the new release fits under ``/opt/edgecnn``
        (the installer checks that again on the board)."""
        stage = shlex.quote(self.stage)
        self.staged = True
        self.ssh.run(f"mkdir -p {stage} && chmod 700 {stage}", timeout=60)
        self.clean_stage()
        # df of the stage, then of the prefix (or its nearest existing parent): one line each
        script = f'p={PREFIX}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -Pk {stage} "$p"'
        done = self.ssh.run(script, timeout=60, check=False)
        disks = [line.split() for line in done.stdout.strip().splitlines()[1:]]
        disks = [d for d in disks if len(d) >= 6 and d[3].isdigit()]
        if not disks:
            return  # no df answer: the upload itself will tell
        bundle = self.bundle
        staged = bundle.unpacked_size + (0 if facts.get("have") == bundle.sha256 else bundle.size)
        # a release of this very bundle already on the board is not built again
        built = bool(bundle.manifest_sha256) and facts.get("release") == bundle.manifest_sha256
        release = 0 if built or len(disks) < 2 else bundle.release_size
        free = int(disks[0][3]) * 1024
        if release and (disks[0][0], disks[0][5]) == (disks[1][0], disks[1][5]):  # one filesystem
            if free < staged + release:
                raise StepError(
                    f"not enough space on the board: {free / 1e6:.0f} MB free in {self.stage} and "
                    f"{PREFIX} (one filesystem); the bundle needs {staged / 1e6:.0f} MB to be staged "
                    f"and its release about {release / 1e6:.0f} MB"
                )
            return
        if free < staged:
            raise StepError(
                f"not enough space on the board: {free / 1e6:.0f} MB free in {self.stage}, the bundle "
                f"needs {staged / 1e6:.0f} MB there (the archive and its unpacked files)"
            )
        free = int(disks[-1][3]) * 1024
        if release and free < release:
            raise StepError(
                f"not enough space on the board: {free / 1e6:.0f} MB free in {PREFIX}, the new release "
                f"needs about {release / 1e6:.0f} MB there"
            )

    def upload(self, have: str | None) -> None:
        """Copy the archive to the staging directory unless the same bytes are there."""
        name = f"{self.bundle.sha256}.tar.gz"
        stage = shlex.quote(self.stage)
        if have == self.bundle.sha256:
            self.log(f"bundle already on the board ({name[:12]}...), not uploading")
            return
        self.log(f"uploading {self.bundle.size / 1e6:.1f} MB")
        started = time.monotonic()
        with self.bundle.path.open("rb") as data:
            done = self.ssh.run(
                f"cat > {stage}/{name}.part && mv -f {stage}/{name}.part {stage}/{name}",
                stdin=data,
                check=False,
            )
        if done.returncode != 0:
            raise StepError(f"the upload failed: {last_lines(done)}")
        got = self.ssh.run(f"sha256sum {stage}/{name}", timeout=300).stdout.split(" ", 1)[0]
        if got != self.bundle.sha256:
            raise StepError(f"the upload arrived damaged (sha256 {got[:16]}... on the board)")
        self.timed("upload", started)
        self.result.uploaded_bytes = self.bundle.size
        self.log(f"uploaded in {self.result.seconds['upload']:.1f} s")

    def install(self) -> None:
        """Unpack and run the bundle's installer (it verifies, installs and switches ``current``)."""
        stage, sha = shlex.quote(self.stage), self.bundle.sha256
        done = self.ssh.run(
            f"cd {stage} && rm -rf {sha} && mkdir {sha} && tar xzf {sha}.tar.gz -C {sha}",
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise StepError(f"unpacking the bundle on the board failed: {last_lines(done)}")
        self.log(f"installing {self.bundle.version}")
        started = time.monotonic()
        # Two calls: the long one builds and checks the release and changes nothing the running
        # service uses, so a deploy cut off there (Ctrl-C, a dropped link) leaves the board as
        # it was; the short one switches config, unit and the current link.
        version = shlex.quote(self.bundle.version)
        try:
            out = self.sudo(f"python3 {self.installer} --no-switch", "install.py", timeout=3600)
            switch = f"python3 {self.installer} --switch-to {version} --enable"
        except StepError as exc:
            if "unrecognized arguments: --no-switch" not in str(exc):
                raise
            # a bundle made before --no-switch: install and switch in one call
            self.switched = True
            out = self.sudo(f"python3 {self.installer} --enable", "install.py", timeout=3600)
            switch = ""
        self.timed("install", started)
        lines = [ln for ln in out.splitlines() if ln.startswith("install.py: {")]
        summary = json.loads(lines[-1].split(": ", 1)[1]) if lines else {}
        self.result.venv_from = summary.get("venv_from")
        how = summary.get("state", "installed")
        if self.result.venv_from:
            how += f", packages reused from {self.result.venv_from}"
        self.log(f"{how} in {self.result.seconds['install']:.1f} s")
        self.step, self.switched = "switch", True
        if switch:
            self.sudo(switch, "switching to the release", timeout=600)
        self.result.current = self.bundle.version
        self.log(f"current -> {self.bundle.version}")

    def invocation(self) -> str:
        """The service's current ``InvocationID`` ('' if it never ran)."""
        out = self.ssh.run(f"systemctl show -p InvocationID --value {SERVICE}", timeout=60, check=False)
        return out.stdout.strip()

    def restart_and_check(self, label: str) -> tuple[bool, str]:
        """Restart the service (without waiting for it) and run the health check."""
        old = self.invocation()
        if old:  # a failed unit (or one past its start limit) would not start again
            self.sudo(f"systemctl reset-failed {SERVICE}", "systemctl reset-failed")
        self.sudo(f"systemctl restart --no-block {SERVICE}", "systemctl restart")
        timeout = self.options.health_timeout
        self.log(f"health check ({label}, up to {timeout:.0f} s)")
        started = time.monotonic()
        check = HealthCheck(old)
        deadline = started + timeout
        while True:
            props = parse_show(self.ssh.run(show_command(), timeout=60, check=False).stdout)
            verdict, detail = check.observe(props)
            if verdict != "wait":
                break
            if time.monotonic() >= deadline:
                verdict, detail = "failed", check.timeout_reason(timeout)
                break
            if self.ssh.cancel.wait(self.options.poll_interval):
                raise InterruptError(f"{self.host}: interrupted")
        self.timed(label, started)
        self.log(f"{verdict if verdict == 'healthy' else 'not healthy'}: {detail}")
        return verdict == "healthy", detail

    def journal(self) -> list[str]:
        """The service's last journal lines since the deploy began, secrets redacted."""
        since = f"--since @{self.since} " if self.since.isdigit() else ""
        command = f"sudo -n journalctl -u {SERVICE} {since}-n {JOURNAL_LINES} --no-pager -o cat"
        done = self.ssh.run(command, timeout=60, check=False)
        return [redact(line) for line in done.stdout.splitlines() if line.strip()]

    def rollback(self, why: str) -> None:
        """Switch back to the previous release and check it; or stop the service if there is none."""
        result = self.result
        result.journal = self.journal()
        errors = [line for line in result.journal if "error:" in line.lower()]
        if errors:
            why = f"{why}: {errors[-1]}"
        previous = self.rollback_to
        try:
            if previous is None:
                self.log("no previous release to roll back to: stopping the service")
                self.sudo(f"systemctl stop {SERVICE}", "systemctl stop")
                result.reason = f"{why}; no previous release to roll back to, the service was stopped"
                return
            self.log(f"rolling back to {previous}")
            started = time.monotonic()
            switch = f"python3 {self.installer} --switch-to {shlex.quote(previous)} --enable"
            try:
                self.sudo(f"{switch} --previous {shlex.quote(self.restore_previous)}", "rollback")
            except StepError as exc:
                if "unrecognized arguments: --previous" not in str(exc):
                    raise
                self.sudo(switch, "rollback")  # an installer from before --previous
            result.current = previous
            healthy, detail = self.restart_and_check("rollback health")
            self.timed("rollback", started)
        except InterruptError:
            raise
        except (SshError, StepError) as exc:
            raise StepError(f"{why}; the rollback to {previous} failed: {exc}") from None
        if healthy:
            result.outcome, result.status = "rolled back", detail
            result.reason = f"{why}; rolled back to {previous}"
        else:
            result.reason = f"{why}; rolled back to {previous}, which is not healthy either: {detail}"

    def prune(self) -> None:
        """Prune old releases after a healthy deploy. A failure here is reported in the reason
        but does not undo the deploy: the new release runs healthy."""
        try:
            out = self.sudo(f"python3 {self.installer} --prune --keep {self.options.keep}", "prune")
        except InterruptError:  # the new release runs healthy: that stands
            self.result.reason = "deployed; interrupted while pruning old releases"
            return
        except (SshError, StepError) as exc:
            self.result.reason = f"deployed, but {str(exc).removeprefix(f'{self.host}: ')}"
            self.log(self.result.reason)
            return
        lines = [ln for ln in out.splitlines() if ln.startswith("install.py: {")]
        self.result.removed = json.loads(lines[-1].split(": ", 1)[1])["removed"] if lines else []
        if self.result.removed:
            self.log(f"removed old releases: {', '.join(self.result.removed)}")

    def run(self) -> BoardResult:
        """All the steps; never raises for a board's failure (it is in the result)."""
        started = time.monotonic()
        result = self.result
        try:
            self.log("connecting")
            self.probe()
            self.timed("connect", started)
            self.step = "lock"
            self.lock()
            facts = self.probe()  # again, now that no other deploy can change the board
            if self.already_running(facts):
                self.step = ""
            else:
                self.step = "upload"
                self.prepare_stage(facts)
                self.upload(facts.get("have"))
                self.step = "install"
                self.install()
                self.step = "health"
                healthy, detail = self.restart_and_check("health")
                if healthy:
                    result.outcome, result.status = "deployed", detail
                    self.step = "prune"
                    self.prune()
                    self.step = "prune" if result.reason else ""
                else:
                    self.step = "rollback"
                    self.rollback(detail)
                    if result.outcome == "rolled back":
                        self.step = "health"
        except InterruptError:
            self.interrupted()
        except (SshError, StepError) as exc:
            result.outcome = "failed"
            result.reason = str(exc).removeprefix(f"{self.host}: ")
        finally:
            result.step = self.step or None
            # also after a failure: leave no unpacked bundle or cut-off upload behind (only under
            # the lock: without it the staging directory may be another deploy's)
            with contextlib.suppress(SshError):
                if self.staged and self._lock is not None and not self.ssh.cancel.is_set():
                    self.clean_stage()
            with contextlib.suppress(SshError, OSError):
                self.unlock()
        self.timed("total", started)
        self.log(
            f"{result.outcome} in {result.seconds['total']:.1f} s"
            + (f": {result.reason}" if result.reason else "")
        )
        return result

    def interrupted(self) -> None:
        """Ctrl-C cut this board's deploy off: say what state it was left in."""
        result, step = self.result, self.step
        if not self.switched:
            result.outcome = LEFT_AS_IT_WAS
            running = f"; {result.current} still runs" if result.current else ""
            result.reason = f"interrupted during the {step} step, before anything was switched{running}"
        else:
            result.outcome = INTERRUPTED
            result.reason = (
                f"interrupted during the {step} step, after the switch to {self.bundle.version}: "
                f"the board now runs {result.current or 'an unchecked release'}, unchecked; "
                "deploy again to check it"
            )


def lock_script(path: str, wait: int = 0) -> str:
    """The shell script (run as root) that takes an exclusive ``flock`` on ``path``: it prints
    ``locked`` and holds the lock until its stdin closes (the deploy ends, or its connection
    drops), with ``$1`` (who holds it) written in the file. When another holds it: with
    ``wait`` seconds, it prints ``waiting`` and that holder's text on one line and waits that
    long for the lock; then (or at once) it prints ``busy`` and the holder's text and exits
    :data:`LOCK_BUSY`."""
    file = shlex.quote(path)
    folder = shlex.quote(path.rsplit("/", 1)[0] or "/")
    busy = f"echo busy; cat {file}; exit {LOCK_BUSY}"
    if wait > 0:
        waiting = f'echo "waiting $(cat {file})"'
        take = f"if ! flock -n 9; then {waiting}; flock -w {int(wait)} 9 || {{ {busy}; }}; fi; "
    else:
        take = f"if ! flock -n 9; then {busy}; fi; "
    hold = f': > {file}; echo "$1, since $(date -u +%H:%M:%SZ)" >&9; echo locked; while read -r _; do :; done'
    return f"mkdir -p {folder} && exec 9>>{file} || exit 1; {take}{hold}"


def _release(link: str) -> str | None:
    """The version a ``current`` / ``previous`` link (``releases/<version>``) names, or None."""
    return link.rsplit("/", 1)[-1] if link.startswith("releases/") else None


def deploy_board(
    host: Host,
    bundle: BundleInfo,
    options: DeployOptions,
    log: Log = print,
    cancel: threading.Event | None = None,
) -> BoardResult:
    """Deploy ``bundle`` to one board; the result says how it went (this never raises for a
    failure on the board, only for a bug). Setting ``cancel`` stops it as soon as it can."""
    return BoardDeploy(host, bundle, options, log, cancel).run()
