"""One board's deploy steps against a scripted board: what is sent, in what order, and the verdict.

The real thing (sshd, systemd, the installer on an emulated Pi) runs in
``tests/board/test_deploy.py``; here :class:`ScriptedBoard` stands in for
:class:`~edgecnn.deploy.ssh.Ssh` only, answering each remote command by the first rule whose
text it contains, so the cases a board rarely shows on demand (a deploy cut off mid-install, a
full disk, a failing prune) are checked in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgecnn.deploy.bundle_info import BundleInfo
from edgecnn.deploy.hosts import Host
from edgecnn.deploy.remote import BoardDeploy, DeployOptions
from edgecnn.deploy.ssh import Completed, SshError

VERSION, OLD, OLDER = "0.1.0-new", "0.1.0-old", "0.1.0-older"
SHA = "ab" * 32
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


class ScriptedBoard:
    """Answers remote commands like :meth:`Ssh.run` would; records every command."""

    def __init__(self, rules: list[tuple[str, Answer]]) -> None:
        self.rules = rules
        self.commands: list[str] = []

    def run(
        self, command: str, *, stdin: object = None, timeout: float | None = None, check: bool = True
    ) -> Completed:
        self.commands.append(command)
        done = ok()
        for key, answer in self.rules:
            if key in command:
                done = answer(command) if callable(answer) else answer
                break
        if done.returncode == 255:
            raise SshError("pi@board: ssh failed: exit code 255")
        if check and done.returncode != 0:
            raise SshError(f"pi@board: command failed: {done.stderr}")
        return done

    def sent(self, text: str) -> list[str]:
        return [c for c in self.commands if text in c]


def probe(current: str = OLD, previous: str = OLDER, have: str = "") -> Completed:
    lines = [
        "home=/home/pi",
        "machine=aarch64",
        f"current=releases/{current}" if current else "current=",
        f"previous=releases/{previous}" if previous else "previous=",
        "now=1700000000",
        "python3=yes",
        "sudo=yes",
    ]
    return ok("\n".join(lines + ([f"have={have}"] if have else [])) + "\n")


def summary(state: str = "installed") -> Completed:
    return ok(f'install.py: {{"state": "{state}", "venv_from": null}}\n')


def run_deploy(
    tmp_path: Path, rules: list[tuple[str, Answer]], **options: object
) -> tuple[ScriptedBoard, object]:
    archive = tmp_path / "b.tar.gz"
    archive.write_bytes(b"x" * 1000)  # the size the checks see is the tiny detector's
    bundle = BundleInfo(archive, SHA, 76_000_000, "tiny", VERSION, "tiny-top", "aarch64", 77_000_000)
    board = ScriptedBoard(rules)
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
    assert board.commands[-1].startswith("find /home/pi/.cache/edgecnn-deploy -mindepth 1")
    assert f"! -name {SHA}.tar.gz" in board.commands[-1]


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
    assert board.commands[-1].startswith("find /home/pi/.cache/edgecnn-deploy -mindepth 1")
    assert not board.sent("install.py")
