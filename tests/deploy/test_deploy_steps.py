"""One board's deploy steps against a scripted board: what is sent, in what order, and the verdict.

The real thing (sshd, systemd, the installer on an emulated Pi) runs in
``tests/board/test_deploy.py``; here :class:`ScriptedBoard` stands in for
:class:`~edgecnn.deploy.ssh.Ssh` only, answering each remote command by the first rule whose
text it contains, so the cases a board rarely shows on demand (a deploy cut off mid-install, a
full disk, a failing prune) are checked in milliseconds.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgecnn.deploy.bundle_info import BundleInfo
from edgecnn.deploy.hosts import Host
from edgecnn.deploy.remote import LOCK, BoardDeploy, BoardResult, DeployOptions, lock_script
from edgecnn.deploy.ssh import Completed, InterruptError, Ssh, SshError, SshOptions

VERSION, OLD, OLDER = "0.1.0-new", "0.1.0-old", "0.1.0-older"
SHA, MANIFEST_SHA = "ab" * 32, "cd" * 32
Answer = Completed | Callable[[str], Completed]


def ok(stdout: str = "") -> Completed:
    return Completed(0, stdout, "")


def show(
    state: str, sub: str, inv: str = "", watchdog: int = 0, status: str = "", result: str = "success"
) -> str:
    return (
        f"ActiveState={state}\nSubState={sub}\nInvocationID={inv}\nNRestarts=0\nResult={result}\n"
        f"ExecMainCode=1\nExecMainStatus={2 if state == 'failed' else 0}\n"
        f"WatchdogTimestampMonotonic={watchdog}\nStatusText={status}\n"
    )


def healthy_runs() -> Callable[[str], Completed]:
    """``systemctl show`` answers of a service that restarts and runs healthy (each restart a new run)."""
    count = {"n": 0}

    def answer(_: str) -> Completed:
        count["n"] += 1
        n = count["n"]
        frames = "running: 2.0 fps, 30 frames"
        return ok(show("active", "running", inv=f"run{(n + 1) // 2}", watchdog=n, status=frames))

    return answer


FAILED = ok(show("failed", "failed", inv="bad", result="exit-code"))


def failed_then_healthy() -> Callable[[str], Completed]:
    """The new release's service fails; the one rolled back to runs healthy."""
    healthy = healthy_runs()
    calls = {"n": 0}

    def answer(command: str) -> Completed:
        calls["n"] += 1
        return FAILED if calls["n"] == 1 else healthy(command)

    return answer


class ScriptedBoard:
    """Answers remote commands like :meth:`Ssh.run` would; records every command."""

    def __init__(self, rules: list[tuple[str, Answer]]) -> None:
        self.rules = rules
        self.commands: list[str] = []
        self.cancel = threading.Event()
        self.held: list[subprocess.Popen[bytes]] = []

    def run(
        self, command: str, *, stdin: object = None, timeout: float | None = None, check: bool = True
    ) -> Completed:
        self.commands.append(command)
        done = ok()
        for key, answer in self.rules:
            if key in command:
                done = answer(command) if callable(answer) else answer
                break
        if self.cancel.is_set():  # Ctrl-C while the command ran: Ssh.run says so
            raise InterruptError("pi@board: interrupted")
        if done.returncode == 255:
            raise SshError("pi@board: ssh failed: exit code 255")
        if check and done.returncode != 0:
            raise SshError(f"pi@board: command failed: {done.stderr}")
        return done

    def hold(self, command: str, ready: str, **_: object) -> subprocess.Popen[bytes] | Completed:
        """The deploy lock: granted (a local process standing in for the one holding it) unless a
        rule answers the command."""
        self.commands.append(command)
        for key, answer in self.rules:
            if key in command:
                return answer(command) if callable(answer) else answer
        proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self.held.append(proc)
        return proc

    def release(self, proc: subprocess.Popen[bytes]) -> None:
        self.commands.append("release lock")
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)

    def sent(self, text: str) -> list[str]:
        return [c for c in self.commands if text in c]


def probe(current: str = OLD, previous: str = OLDER, have: str = "", extra: str = "") -> Completed:
    lines = [
        "home=/home/pi",
        "machine=aarch64",
        f"current=releases/{current}" if current else "current=",
        f"previous=releases/{previous}" if previous else "previous=",
        "now=1700000000",
        "python3=yes",
        "sudo=yes",
    ]
    return ok("\n".join(lines + ([f"have={have}"] if have else [])) + "\n" + extra)


def summary(state: str = "installed") -> Completed:
    return ok(f'install.py: {{"state": "{state}", "venv_from": null}}\n')


def run_deploy(
    tmp_path: Path,
    rules: list[tuple[str, Answer]],
    board: ScriptedBoard | None = None,
    release_size: int = 0,
    **options: object,
) -> tuple[ScriptedBoard, BoardResult]:
    archive = tmp_path / "b.tar.gz"
    archive.write_bytes(b"x" * 1000)  # the size the checks see is the tiny detector's
    bundle = BundleInfo(
        archive, SHA, 76_000_000, "tiny", VERSION, "tiny-top", "aarch64", 77_000_000, MANIFEST_SHA,
        release_size=release_size,
    )
    board = board or ScriptedBoard(rules)
    board.rules = rules
    job = BoardDeploy(Host("board", "pi"), bundle, DeployOptions(poll_interval=0, **options), lambda _: None)
    job.ssh = board  # type: ignore[assignment]
    return board, job.run()


def common(probe_answer: Completed, health: Answer) -> list[tuple[str, Answer]]:
    """Rules for a deploy that gets as far as the health check (upload verified, installer OK)."""
    return [
        ('echo "home=$HOME"', probe_answer),
        (
            "df -Pk",
            ok("Filesystem 1024-blocks Used Available Capacity Mounted\n/dev/root 900000 0 500000 1% /\n"),
        ),
        ("sha256sum", ok(f"{SHA}  file\n")),
        ("--no-switch", summary()),
        ("--prune", ok('install.py: {"removed": [], "state": "pruned"}\n')),
        ("-p InvocationID --value", ok("run0\n")),
        ("systemctl show", health),
    ]


def test_redeploy_of_the_current_release_rolls_back_to_the_boards_previous(tmp_path: Path) -> None:
    """A deploy cut off after its switch leaves the new release current; deploying it again and
    finding it unhealthy must switch to the release before it, not stop the service."""
    board, result = run_deploy(tmp_path, common(probe(current=VERSION, previous=OLD), FAILED))
    assert board.sent(f"--switch-to {OLD} --enable"), board.commands
    assert not board.sent("systemctl stop")
    assert result.previous == VERSION and result.current == OLD
    assert "rolled back to 0.1.0-old" in result.reason


def test_first_deploy_without_a_previous_release_stops_the_service(tmp_path: Path) -> None:
    board, result = run_deploy(tmp_path, common(probe(current="", previous=""), FAILED))
    assert board.sent("systemctl stop") and not board.sent("--switch-to 0.1.0-old")
    assert result.outcome == "failed" and "no previous release to roll back to" in result.reason


def test_release_is_built_before_anything_is_switched(tmp_path: Path) -> None:
    board, result = run_deploy(tmp_path, common(probe(), healthy_runs()))
    assert result.outcome == "deployed", result.reason
    build = next(i for i, c in enumerate(board.commands) if "--no-switch" in c)
    switch = next(i for i, c in enumerate(board.commands) if f"--switch-to {VERSION} --enable" in c)
    restart = next(i for i, c in enumerate(board.commands) if "systemctl restart" in c)
    assert build < switch < restart


def test_deploy_cut_off_while_installing_switches_nothing_and_cleans_up(tmp_path: Path) -> None:
    """The link drops (or Ctrl-C kills ssh) during the long install call: no switch is sent, the
    board's current release and service are untouched, and the staging directory is cleared."""
    rules = common(probe(), healthy_runs())
    rules.insert(0, ("--no-switch", Completed(255, "", "")))
    board, result = run_deploy(tmp_path, rules)
    assert result.outcome == "failed" and result.current == OLD
    assert not board.sent("--switch-to") and not board.sent("systemctl restart")
    assert board.commands[-2].startswith("find /home/pi/.cache/edgecnn-deploy -mindepth 1")
    assert f"! -name {SHA}.tar.gz" in board.commands[-2]
    assert board.commands[-1] == "release lock"


def test_installer_without_no_switch_is_run_the_old_way(tmp_path: Path) -> None:
    """A bundle made before ``--no-switch`` existed: install and switch in one call."""
    rules = common(probe(), healthy_runs())
    refused = Completed(2, "", "install.py: error: unrecognized arguments: --no-switch\n")
    rules.insert(0, ("--no-switch", refused))
    rules.insert(0, ("install.py --enable", summary()))
    board, result = run_deploy(tmp_path, rules)
    assert result.outcome == "deployed", result.reason
    assert len(board.sent("install.py --enable")) == 1 and not board.sent(f"--switch-to {VERSION}")


def test_failed_prune_does_not_undo_a_healthy_deploy(tmp_path: Path) -> None:
    rules = common(probe(), healthy_runs())
    rules.insert(0, ("--prune", Completed(1, "", "install.py: error: [Errno 5] Input/output error\n")))
    _, result = run_deploy(tmp_path, rules)
    assert result.outcome == "deployed" and result.ok and result.current == VERSION
    assert result.reason.startswith("deployed, but prune failed: install.py: error: [Errno 5]")


def df(*disks: tuple[str, int, str]) -> Completed:
    """``df -Pk`` output: one ``(device, free KiB, mount point)`` line per path asked."""
    lines = "".join(f"{dev} 9000000 0 {free} 1% {mount}\n" for dev, free, mount in disks)
    return ok("Filesystem 1024-blocks Used Available Capacity Mounted on\n" + lines)


RELEASE = 363_000_000  # the installer's estimate for the tiny detector's release


def test_a_release_that_does_not_fit_under_opt_is_refused_before_uploading(tmp_path: Path) -> None:
    """/opt on its own filesystem with 307 MB free: the 363 MB release would not fit. The
    installer on the board would refuse it too, but only after the upload."""
    rules = common(probe(), healthy_runs())
    rules.insert(0, ("df -Pk", df(("/dev/home", 900_000, "/home"), ("/dev/opt", 300_000, "/opt"))))
    board, result = run_deploy(tmp_path, rules, release_size=RELEASE)
    assert result.outcome == "failed" and result.step == "upload", result.reason
    assert result.reason == (
        "not enough space on the board: 307 MB free in /opt/edgecnn, the new release needs about 363 MB there"
    )
    assert not board.sent("cat >") and not board.sent("install.py")
    # the stage and the prefix (or its nearest existing parent) were asked in one df
    assert board.sent('df -Pk /home/pi/.cache/edgecnn-deploy "$p"'), board.commands
    rules[0] = ("df -Pk", df(("/dev/home", 900_000, "/home"), ("/dev/opt", 360_000, "/opt")))
    board, result = run_deploy(tmp_path, rules, release_size=RELEASE)
    assert result.outcome == "deployed", result.reason


def test_stage_and_release_on_one_filesystem_must_fit_together(tmp_path: Path) -> None:
    """512 MB free on the one filesystem: 153 MB to stage and 363 MB of release do not fit
    (each would alone); with the archive already staged, 77 + 363 MB do."""
    one = df(("/dev/root", 500_000, "/"), ("/dev/root", 500_000, "/"))
    rules = [("df -Pk", one), *common(probe(), healthy_runs())]
    board, result = run_deploy(tmp_path, rules, release_size=RELEASE)
    assert result.outcome == "failed", result.reason
    assert result.reason == (
        "not enough space on the board: 512 MB free in /home/pi/.cache/edgecnn-deploy and /opt/edgecnn "
        "(one filesystem); the bundle needs 153 MB to be staged and its release about 363 MB"
    )
    assert not board.sent("cat >")
    rules[1:2] = [('echo "home=$HOME"', probe(have=SHA))]
    board, result = run_deploy(tmp_path, rules, release_size=RELEASE)
    assert result.outcome == "deployed", result.reason


def test_a_release_of_this_bundle_already_on_the_board_needs_no_room(tmp_path: Path) -> None:
    """Its release is complete on the board (a rollback left it, say): the installer builds
    nothing, so 1 MB free under /opt is no reason to refuse."""
    tight = df(("/dev/home", 900_000, "/home"), ("/dev/opt", 1_000, "/opt"))
    rules = [("df -Pk", tight), *common(probe(extra=f"release={MANIFEST_SHA}\n"), healthy_runs())]
    board, result = run_deploy(tmp_path, rules, release_size=RELEASE)
    assert result.outcome == "deployed", result.reason
    assert board.sent(f"releases/{VERSION}/.installed"), board.commands
    # another bundle of that version there (another digest): it is built again, and checked
    rules[1:2] = [('echo "home=$HOME"', probe(extra="release=" + "ef" * 32 + "\n"))]
    board, result = run_deploy(tmp_path, rules, release_size=RELEASE)
    assert result.outcome == "failed" and "363 MB" in result.reason, result.reason


def test_not_enough_space_is_refused_before_uploading(tmp_path: Path) -> None:
    """102 MB free: not enough for a 76 MB archive and its 77 MB of files; enough for the files
    alone when the archive is already staged."""
    rules = common(probe(), healthy_runs())
    rules.insert(
        0,
        (
            "df -Pk",
            ok("Filesystem 1024-blocks Used Available Capacity Mounted\n/dev/root 9 8 100000 99% /\n"),
        ),
    )
    board, result = run_deploy(tmp_path, rules)
    assert result.outcome == "failed", result.reason
    assert result.reason == (
        "not enough space on the board: 102 MB free in /home/pi/.cache/edgecnn-deploy, the bundle needs "
        "153 MB there (the archive and its unpacked files)"
    )
    assert not board.sent("cat >") and not board.sent("install.py")
    assert board.sent("chmod 700 /home/pi/.cache/edgecnn-deploy")
    rules[0:1] = [(rules[0][0], rules[0][1]), ('echo "home=$HOME"', probe(have=SHA))]
    board, result = run_deploy(tmp_path, rules)
    assert result.outcome == "deployed", result.reason


def test_failed_upload_names_the_upload_and_leaves_no_part_file(tmp_path: Path) -> None:
    rules = common(probe(), healthy_runs())
    rules.insert(0, ("cat >", Completed(1, "", "cat: write error: No space left on device\n")))
    board, result = run_deploy(tmp_path, rules)
    assert result.reason == "the upload failed: cat: write error: No space left on device"
    assert board.commands[-2].startswith("find /home/pi/.cache/edgecnn-deploy -mindepth 1")
    assert not board.sent("install.py")


# -- rollback links, idempotence, the deploy lock, Ctrl-C, the failed step ----------------------


def test_rollback_restores_previous_to_the_last_good_release(tmp_path: Path) -> None:
    """current OLD, previous OLDER; the new release fails: back to OLD, and ``previous`` must name
    OLDER again (not the broken release), or be removed when the board already ran the new one."""
    board, result = run_deploy(tmp_path, common(probe(), failed_then_healthy()))
    assert result.outcome == "rolled back" and result.step == "health"
    assert board.sent(f"--switch-to {OLD} --enable --previous {OLDER}"), board.commands
    board, result = run_deploy(tmp_path, common(probe(current=VERSION, previous=OLD), failed_then_healthy()))
    assert board.sent(f"--switch-to {OLD} --enable --previous ''"), board.commands


def test_rollback_with_an_installer_without_previous_still_switches(tmp_path: Path) -> None:
    rules = common(probe(), failed_then_healthy())
    refused = Completed(2, "", "install.py: error: unrecognized arguments: --previous 0.1.0-older\n")
    rules.insert(0, ("--previous", refused))
    board, result = run_deploy(tmp_path, rules)
    assert result.outcome == "rolled back", result.reason
    assert len([c for c in board.commands if c.endswith(f"--switch-to {OLD} --enable")]) == 1


RUNNING = show("active", "running", inv="run7", watchdog=99, status="running: 2.0 fps, 31 frames")


def test_redeploying_the_running_bundle_does_nothing_unless_forced(tmp_path: Path) -> None:
    running = probe(current=VERSION, previous=OLD, extra=f"installed={MANIFEST_SHA}\n" + RUNNING)
    board, result = run_deploy(tmp_path, common(running, healthy_runs()))
    assert (result.outcome, result.ok, result.reason) == (
        "already running",
        True,
        f"already running {VERSION}",
    )
    assert result.status == "running: 2.0 fps, 31 frames" and result.step is None
    changing = ("cat >", "install.py", "systemctl restart", "mkdir -p /home", "find ")
    assert not [c for c in board.commands if any(word in c for word in changing)], board.commands

    board, result = run_deploy(tmp_path, common(running, healthy_runs()), force=True)
    assert result.outcome == "deployed" and board.sent("systemctl restart")
    # Same version, other bytes (another manifest digest), or not healthy: deployed again.
    other = probe(current=VERSION, previous=OLD, extra=f"installed={'ef' * 32}\n" + RUNNING)
    board, result = run_deploy(tmp_path, common(other, healthy_runs()))
    assert result.outcome == "deployed" and board.sent("systemctl restart")
    stuck = RUNNING.replace("running: 2.0 fps, 31 frames", "camera offline: retrying")
    sick = probe(current=VERSION, previous=OLD, extra=f"installed={MANIFEST_SHA}\n" + stuck)
    board, result = run_deploy(tmp_path, common(sick, healthy_runs()))
    assert result.outcome == "deployed" and board.sent("systemctl restart")


def test_failed_step_is_named(tmp_path: Path) -> None:
    cases = [
        (("cat >", Completed(1, "", "cat: write error\n")), "upload"),
        (("--no-switch", Completed(1, "", "install.py: error: wheels/x.whl: sha256 mismatch\n")), "install"),
        (
            (f"--switch-to {VERSION}", Completed(1, "", "install.py: error: systemctl enable failed\n")),
            "switch",
        ),
        (("-p InvocationID --value", Completed(255, "", "")), "health"),
    ]
    for rule, step in cases:
        rules = common(probe(), healthy_runs())
        rules.insert(0, rule)
        _, result = run_deploy(tmp_path, rules)
        assert (result.outcome, result.step) == ("failed", step), (step, result.reason)
        assert result.to_dict()["step"] == step
    _, result = run_deploy(tmp_path, common(probe(), healthy_runs()))
    assert result.outcome == "deployed" and result.to_dict()["step"] is None
    rules = common(probe(), FAILED)
    rules.insert(0, ("--switch-to 0.1.0-old", Completed(1, "", "install.py: error: disk full\n")))
    _, result = run_deploy(tmp_path, rules)
    assert (result.outcome, result.step) == ("failed", "rollback"), result.reason


class LocalSsh(Ssh):
    """The real :class:`Ssh` start/hold/release code, running the "board's" command here with sh
    (root runs the tests, as sudo would on the board) and the lock file in a temporary folder."""

    def __init__(self, lock: Path) -> None:
        super().__init__(Host("board", "pi"), SshOptions())
        self.lock_file = lock

    def argv(self, command: str) -> list[str]:
        return ["sh", "-c", command.replace("sudo -n ", "", 1).replace(LOCK, str(self.lock_file))]


class LockingBoard(ScriptedBoard):
    """A scripted board whose deploy lock is a real flock, held by a real process."""

    def __init__(self, lock: Path) -> None:
        super().__init__([])
        self.local = LocalSsh(lock)

    def hold(self, command: str, ready: str, **options: Any) -> subprocess.Popen[bytes] | Completed:
        self.commands.append(command)
        return self.local.hold(command, ready, **options)

    def release(self, proc: subprocess.Popen[bytes]) -> None:
        self.commands.append("release lock")
        self.local.release(proc)


def test_a_second_deploy_to_a_busy_board_is_refused_in_one_line(tmp_path: Path) -> None:
    """Two operators, one board: while one deploy holds the board's lock, a second one changes
    nothing (not even the staging directory) and says who holds it; afterwards it goes ahead."""
    lock = tmp_path / "deploy.lock"
    first = LockingBoard(lock)
    proc = first.hold(
        f"sudo -n sh -c {shlex.quote(lock_script(LOCK))} x 'alice on ws1, deploying 0.1.0-a'", "locked"
    )
    assert isinstance(proc, subprocess.Popen)
    board, result = run_deploy(tmp_path, common(probe(), healthy_runs()), board=LockingBoard(lock))
    assert (result.outcome, result.step) == ("failed", "lock")
    assert re.fullmatch(
        r"another deploy to this board is running \(alice on ws1, deploying 0\.1\.0-a, since "
        r"\d\d:\d\d:\d\dZ\); wait for it to finish and deploy again \(or give --lock-timeout SECONDS "
        r"to wait\)",
        result.reason,
    ), result.reason
    assert len(board.commands) == 2 and "release lock" not in board.commands  # probe, lock: nothing else
    first.release(proc)
    board, result = run_deploy(tmp_path, common(probe(), healthy_runs()), board=LockingBoard(lock))
    assert result.outcome == "deployed", result.reason
    assert board.commands[-1] == "release lock" and "deploying 0.1.0-new" in lock.read_text()


def test_a_deploy_with_a_lock_timeout_waits_for_the_other_to_finish(tmp_path: Path) -> None:
    """--lock-timeout: the second deploy says whom it waits for, takes the lock as soon as the
    first deploy releases it, and goes ahead; when the wait runs out it is refused in one line."""
    lock = tmp_path / "deploy.lock"
    first = LockingBoard(lock)
    hold = f"sudo -n sh -c {shlex.quote(lock_script(LOCK))} x"
    proc = first.hold(f"{hold} 'alice on ws1, deploying 0.1.0-a'", "locked")
    assert isinstance(proc, subprocess.Popen)
    board = LockingBoard(lock)
    board.rules = common(probe(), healthy_runs())
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if "another deploy" in line:  # the first deploy ends while the second waits
            first.release(proc)

    archive = tmp_path / "b.tar.gz"
    archive.write_bytes(b"x" * 1000)
    sizes = (76_000_000, "tiny", VERSION, "tiny-top", "aarch64", 77_000_000)
    bundle = BundleInfo(archive, SHA, *sizes, MANIFEST_SHA)
    job = BoardDeploy(Host("board", "pi"), bundle, DeployOptions(poll_interval=0, lock_timeout=120), log)
    job.ssh = board  # type: ignore[assignment]
    result = job.run()
    assert result.outcome == "deployed", result.reason
    waited = [line for line in lines if "another deploy" in line]
    assert len(waited) == 1 and re.fullmatch(
        r"pi@board: another deploy to this board is running \(alice on ws1, deploying 0\.1\.0-a, since "
        r"\d\d:\d\d:\d\dZ\): waiting up to 120 s",
        waited[0],
    ), waited
    assert "deploying 0.1.0-new" in lock.read_text()

    # Held for longer than the wait: refused, naming the holder and the wait.
    proc = first.hold(f"{hold} 'bob on ws2, deploying 0.1.0-b'", "locked")
    assert isinstance(proc, subprocess.Popen)
    try:
        board, result = run_deploy(
            tmp_path, common(probe(), healthy_runs()), board=LockingBoard(lock), lock_timeout=1
        )
    finally:
        first.release(proc)
    assert (result.outcome, result.step) == ("failed", "lock")
    assert re.fullmatch(
        r"another deploy to this board is still running after 1 s \(bob on ws2, deploying 0\.1\.0-b, "
        r"since \d\d:\d\d:\d\dZ\); deploy again later or with a longer --lock-timeout",
        result.reason,
    ), result.reason
    assert len(board.commands) == 2  # probe, lock: nothing else


def test_ctrl_c_after_the_switch_is_reported_as_interrupted(tmp_path: Path) -> None:
    board = ScriptedBoard([])

    def ctrl_c(_: str) -> Completed:
        board.cancel.set()  # what the fleet does on Ctrl-C, while this command runs
        return Completed(255, "", "")

    rules = common(probe(), ctrl_c)
    _, result = run_deploy(tmp_path, rules, board=board)
    assert (result.outcome, result.step, result.current) == ("interrupted", "health", VERSION)
    assert result.reason == (
        f"interrupted during the health step, after the switch to {VERSION}: the board now runs "
        f"{VERSION}, unchecked; deploy again to check it"
    )
    # Ctrl-C: no more commands (the lock's holder is ended)
    assert board.commands[-2].startswith("systemctl show") and board.commands[-1] == "release lock"
    board = ScriptedBoard([])
    rules = common(probe(), healthy_runs())
    rules.insert(0, ("--no-switch", ctrl_c))
    _, result = run_deploy(tmp_path, rules, board=board)
    assert (result.outcome, result.step) == ("left as it was", "install")
    assert (
        result.reason
        == f"interrupted during the install step, before anything was switched; {OLD} still runs"
    )
