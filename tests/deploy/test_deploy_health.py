"""The health verdict from ``systemctl show`` samples, the ssh command line and its failures."""

from __future__ import annotations

from pathlib import Path

from edgecnn.deploy.fleet import format_summary
from edgecnn.deploy.health import HealthCheck, frames_in_status, parse_show, show_command
from edgecnn.deploy.hosts import Host
from edgecnn.deploy.remote import BoardResult, redact
from edgecnn.deploy.ssh import HostKeyError, Ssh, SshError, SshOptions, ssh_failure


def sample(
    state: str, sub: str, inv: str = "new", restarts: int = 0, watchdog: int = 0, status: str = ""
) -> dict:
    return {
        "ActiveState": state,
        "SubState": sub,
        "InvocationID": inv,
        "NRestarts": str(restarts),
        "WatchdogTimestampMonotonic": str(watchdog),
        "StatusText": status,
        "Result": "success",
        "ExecMainStatus": "0",
    }


def test_healthy_needs_a_new_run_a_ping_after_ready_and_frames() -> None:
    check = HealthCheck(old_invocation="old")
    assert check.observe(sample("active", "running", inv="old", watchdog=5))[0] == "wait"  # not restarted yet
    assert check.observe(sample("activating", "start", status="starting: checking the model"))[0] == "wait"
    assert (
        check.observe(sample("active", "running", watchdog=100, status="running: source starting"))[0]
        == "wait"
    )
    # the same ping as when it became active: not yet proof that the loop runs
    assert (
        check.observe(sample("active", "running", watchdog=100, status="running: 2.0 fps, 3 frames"))[0]
        == "wait"
    )
    # a ping, but no frame processed
    assert (
        check.observe(sample("active", "running", watchdog=200, status="running: 0.0 fps, 0 frames"))[0]
        == "wait"
    )
    verdict, detail = check.observe(
        sample("active", "running", watchdog=300, status="running: 2.0 fps, 31 frames")
    )
    assert (verdict, detail) == ("healthy", "running: 2.0 fps, 31 frames")


def test_failed_restarted_or_crash_looping_fails_at_once() -> None:
    failed = sample("failed", "failed")
    failed.update(Result="exit-code", ExecMainStatus="2")
    assert HealthCheck("old").observe(failed) == ("failed", "the service failed (exit-code, exit status 2)")
    check = HealthCheck("old")
    check.observe(sample("activating", "start", inv="run1"))
    assert check.observe(sample("activating", "start", inv="run2", restarts=1))[0] == "failed"
    check = HealthCheck("old")
    check.observe(sample("active", "running", inv="run1"))
    assert check.observe(sample("active", "running", inv="run1", restarts=1))[0] == "failed"
    assert HealthCheck("").observe(sample("activating", "auto-restart"))[0] == "failed"


def test_failure_names_the_exit_status_or_the_signal() -> None:
    crashed = sample("activating", "auto-restart")
    crashed.update(Result="core-dump", ExecMainCode="3", ExecMainStatus="11")
    assert HealthCheck("old").observe(crashed) == (
        "failed",
        "the service exited (core-dump, SIGSEGV) and systemd is restarting it: it does not stay up",
    )
    killed = sample("failed", "failed")
    killed.update(Result="watchdog", ExecMainCode="2", ExecMainStatus="6")
    assert HealthCheck("old").observe(killed) == ("failed", "the service failed (watchdog, SIGABRT)")
    exited = sample("activating", "auto-restart")
    exited.update(Result="exit-code", ExecMainCode="1", ExecMainStatus="1")
    assert "(exit-code, exit status 1)" in HealthCheck("old").observe(exited)[1]


def test_timeout_reason_names_the_last_state() -> None:
    check = HealthCheck("old")
    check.observe(sample("active", "running", status="camera offline: cannot open /dev/video0; retrying"))
    reason = check.timeout_reason(60)
    assert reason == (
        "not healthy within 60 s (active/running, status: camera offline: cannot open /dev/video0; retrying)"
    )


def test_show_parsing_and_status_frames() -> None:
    assert show_command().startswith("systemctl show edgecnn-detect.service -p ActiveState")
    assert parse_show("A=1\nStatusText=running: 2.0 fps, 3 frames\nnoise\n") == {
        "A": "1",
        "StatusText": "running: 2.0 fps, 3 frames",
    }
    assert frames_in_status("running: 14.9 fps, 1234 frames") == 1234
    assert frames_in_status("running: source ended") is None


def test_ssh_command_line_is_strict_batch_and_safe(tmp_path: Path) -> None:
    key, known = tmp_path / "id", tmp_path / "known"
    argv = Ssh(Host("board", "pi", 2422), SshOptions(identity=key, known_hosts=known)).argv("uname -m")
    assert "BatchMode=yes" in argv and "StrictHostKeyChecking=yes" in argv
    assert f"UserKnownHostsFile={known}" in argv and argv[argv.index("-i") + 1] == str(key)
    assert argv[argv.index("-p") + 1] == "2422"
    assert argv[-3:] == ["--", "pi@board", "uname -m"]
    accept = Ssh(Host("board"), SshOptions(accept_new=True)).argv("true")
    assert "StrictHostKeyChecking=accept-new" in accept and "-p" not in accept and "-i" not in accept


def test_ssh_failures_become_one_clear_line() -> None:
    host, options = Host("127.0.0.2", "pi", 2422), SshOptions(known_hosts=Path("/tmp/kh"))
    unknown = ssh_failure(
        host,
        "No ED25519 host key is known for [127.0.0.2]:2422 and you have requested strict checking.\n"
        "Host key verification failed.\n",
        options,
    )
    assert isinstance(unknown, HostKeyError)
    assert "not known (not in /tmp/kh)" in str(unknown) and "--accept-new-host-key" in str(unknown)
    changed = ssh_failure(host, "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\n", options)
    assert isinstance(changed, HostKeyError)
    assert "CHANGED" in str(changed) and "ssh-keygen -R '[127.0.0.2]:2422' -f /tmp/kh" in str(changed)
    denied = ssh_failure(host, "pi@127.0.0.2: Permission denied (publickey).\n", options)
    assert type(denied) is SshError and "--identity" in str(denied)
    refused = ssh_failure(host, "ssh: connect to host 127.0.0.2 port 2422: Connection refused\n", options)
    assert (
        str(refused)
        == "pi@127.0.0.2:2422: ssh failed: ssh: connect to host 127.0.0.2 port 2422: Connection refused"
    )
    for error in (unknown, changed, denied, refused):
        assert "\n" not in str(error)


def test_journal_lines_are_redacted() -> None:
    assert redact("mqtt: password=hunter2 host=x") == "mqtt: password=*** host=x"
    assert redact("Authorization: Bearer abc") == "Authorization: ***"
    assert redact("source /dev/video0 offline") == "source /dev/video0 offline"


def test_summary_has_one_line_per_board() -> None:
    ok = BoardResult("pi@a", "v2", "deployed", current="v2", status="running: 2.0 fps, 31 frames")
    ok.seconds = {"upload": 5.9, "install": 27.0, "health": 24.2, "total": 70.8}
    bad = BoardResult("pi@b", "v2", "failed", reason="the host key is not known")
    bad.seconds = {"total": 0.4}
    lines = format_summary([ok, bad]).splitlines()
    assert lines[0].split()[:3] == ["board", "outcome", "release"]
    assert lines[1].split()[:7] == ["pi@a", "deployed", "v2", "6s", "27s", "24s", "71s"]
    assert lines[2].startswith("pi@b") and lines[2].endswith("the host key is not known")
    assert lines[3] == "1 of 2 board(s) deployed"
