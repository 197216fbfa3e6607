"""The live fd-2 line filter of long runs (``edgecnn._stderr.filtered_stderr_fd``): C-level
lines that are noise are dropped, every other line comes through while the block still runs,
and Python's own ``sys.stderr`` never goes through the pipe."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgecnn._stderr import filtered_stderr_fd, progress_safe_stderr_fd

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's edgecnn."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
NOISE = re.compile(r"^E\d{4} [\d:.]+ +\d+ meta_optimizer\.cc:\d+\] remapper failed")
REMAPPER = (
    "E0000 00:00:1764000000.123456    1234 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: "
    "Mutation::Apply error: fanout 'gradient_tape/m/act/LeakyRelu/LeakyReluGrad' exist for missing "
    "node 'm/conv/BiasAdd'.\n"
)

#: The child: each C-level write waits for the parent to see it (a line on stdin) before the
#: next, so a line held back until the end of the block hangs the handshake instead.
CHILD = r"""
import ctypes, os, re, sys
from edgecnn._stderr import filtered_stderr_fd

libc = ctypes.CDLL(None)
c_stderr = ctypes.c_void_p.in_dll(libc, "stderr")
original = os.fstat(2)

def step(name):
    print(name, flush=True)
    sys.stdin.readline()

with filtered_stderr_fd(re.compile(sys.argv[1])):
    python = os.fstat(sys.stderr.fileno())
    same = (python.st_dev, python.st_ino) == (original.st_dev, original.st_ino)
    print("python stderr on the original:", same)
    print("fd 2 elsewhere:", os.fstat(2).st_ino != original.st_ino, flush=True)
    os.write(2, sys.argv[2].encode())
    os.write(2, b"real 1 from os.write\n")
    step("real 1")
    line = sys.argv[2].encode()
    libc.write(2, line, len(line))
    libc.write(2, b"real 2 from libc write\n", 23)
    step("real 2")
    libc.fprintf(c_stderr, b"real 3 from fprintf: %d\n", 3)
    libc.fflush(c_stderr)
    step("real 3")
    libc.write(2, b"partial", 7)
    step("partial")
    sys.stderr.write("from python\n")
    step("from python")
os.write(2, b"after the block\n")
"""


def _read_until(fd: int, seen: bytearray, text: bytes, timeout: float = 60.0) -> None:
    """Read ``fd`` into ``seen`` until it holds ``text`` (a timeout fails the test, it is no
    measure of speed)."""
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"{text!r} did not arrive; got {bytes(seen)!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"{text!r} did not arrive before the end; got {bytes(seen)!r}"
        seen += chunk


def test_c_level_lines_come_through_while_the_block_runs_without_the_noise() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, NOISE.pattern, REMAPPER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    err = bytearray()
    try:
        assert proc.stdout.readline() == b"python stderr on the original: True\n"
        assert proc.stdout.readline() == b"fd 2 elsewhere: True\n"
        for name, expect in (
            ("real 1", b"real 1 from os.write\n"),
            ("real 2", b"real 2 from libc write\n"),
            ("real 3", b"real 3 from fprintf: 3\n"),
            ("partial", b"partial"),  # no newline: passed on after a short wait, not at the end
            ("from python", b"from python\n"),
        ):
            assert proc.stdout.readline().decode().strip() == name
            _read_until(proc.stderr.fileno(), err, expect)
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        err += proc.stderr.read()
        assert proc.wait(timeout=60) == 0, bytes(err)
    finally:
        proc.kill()
        proc.wait()
    assert err.decode() == (
        "real 1 from os.write\nreal 2 from libc write\nreal 3 from fprintf: 3\npartial"
        "from python\nafter the block\n"
    )


def test_an_exception_propagates_unchanged_and_fd_2_is_restored() -> None:
    code = (
        "import os, re, sys\n"
        "from edgecnn._stderr import filtered_stderr_fd\n"
        "before = os.fstat(2).st_ino\n"
        "stderr = sys.stderr\n"
        "try:\n"
        "    with filtered_stderr_fd(re.compile('noise')):\n"
        "        os.write(2, b'noise line\\ninside\\n')\n"
        "        raise ValueError('boom')\n"
        "except ValueError as exc:\n"
        "    print(repr(exc), exc.__context__, exc.__cause__)\n"
        "print(os.fstat(2).st_ino == before, sys.stderr is stderr)\n"
        "os.write(2, b'after\\n')\n"
        "sys.stderr.write('python after\\n')\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ValueError('boom') None None\nTrue True\n"
    assert proc.stderr == "inside\nafter\npython after\n"


def test_without_an_fd_2_the_block_runs_unfiltered() -> None:
    code = (
        "import os, re, sys\n"
        "from edgecnn._stderr import filtered_stderr_fd\n"
        "os.close(2)\n"
        "sys.stderr = None\n"
        "with filtered_stderr_fd(re.compile('noise')):\n"
        "    print('ran')\n"
    )
    proc = run_python(code)
    assert (proc.returncode, proc.stdout) == (0, "ran\n")


def test_under_pytest_capture(capfd: pytest.CaptureFixture[str]) -> None:
    # pytest points fd 2 at a file and sys.stderr at another: both still work.
    stderr = sys.stderr
    with filtered_stderr_fd(NOISE):
        assert sys.stderr is stderr  # it does not write to fd 2: left alone
        # Python's line first, in one write: the filter's thread writes its lines whenever
        # they come, and a print (two writes) could take one in the middle.
        sys.stderr.write("python\n")
        sys.stderr.flush()
        os.write(2, f"{REMAPPER}real\n".encode())
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["python", "real"]


def test_nested_blocks_in_a_thread(capfd: pytest.CaptureFixture[str]) -> None:
    def work() -> None:
        with filtered_stderr_fd(re.compile("outer noise")):
            os.write(2, b"outer noise\none\n")
            with filtered_stderr_fd(re.compile("inner noise")):
                os.write(2, b"inner noise\nouter noise\ntwo\n")
            os.write(2, b"three\n")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert capfd.readouterr().err == "one\ntwo\nthree\n"


def test_on_line_gets_the_lines_and_a_failing_callback_loses_none(capfd: pytest.CaptureFixture[str]) -> None:
    got: list[str] = []

    def on_line(line: str) -> None:
        got.append(line)
        if line.startswith("bad"):
            raise RuntimeError("callback failed")

    with filtered_stderr_fd(NOISE, on_line=on_line):
        os.write(2, f"{REMAPPER}first\nbad one\n".encode())
    assert got == ["first\n", "bad one\n"]
    assert capfd.readouterr().err == "bad one\n"


def test_progress_safe_lines_libjpeg_once_with_a_count(capfd: pytest.CaptureFixture[str]) -> None:
    corrupt = b"Corrupt JPEG data: 912 extraneous bytes before marker 0xd9\n"
    with progress_safe_stderr_fd(NOISE):
        os.write(2, corrupt + REMAPPER.encode() + b"a real error\n")
        os.write(2, corrupt + b"Premature end of JPEG file\n" + corrupt)
    assert capfd.readouterr().err == (
        "warning: libjpeg: Corrupt JPEG data: 912 extraneous bytes before marker 0xd9\n"
        "a real error\n"
        "warning: libjpeg: Premature end of JPEG file\n"
        "warning: libjpeg: Corrupt JPEG data: 912 extraneous bytes before marker 0xd9 (3 times)\n"
    )


def test_progress_safe_lines_go_above_a_live_rich_bar() -> None:
    # FORCE_COLOR makes rich draw (and take over sys.stderr) on a pipe as on a terminal.
    code = (
        "import os, re, time\n"
        "from edgecnn._stderr import progress_safe_stderr_fd\n"
        "from edgecnn.train.callbacks import ProgressBar\n"
        "lines = progress_safe_stderr_fd(re.compile('noise'), ProgressBar.print_line)\n"
        "with lines, ProgressBar(1, enabled=True) as bar:\n"
        "    bar.start_epoch(1, 4)\n"
        "    for step in range(1, 5):\n"
        "        bar.step(step, 'loss 1.0')\n"
        "        os.write(2, b'Corrupt JPEG data: 9 extraneous bytes before marker 0xd9\\n')\n"
        "        os.write(2, b'noise\\nE0000 a real error %d\\n' % step)\n"
        "        time.sleep(0.3)\n"
        "    bar.end_epoch('done')\n"
    )
    proc = run_python(code, FORCE_COLOR="1", COLUMNS="100")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "epoch 1/1" in err and "noise" not in err
    # Each line is a line of its own: it follows a newline or rich's "erase line", never bar text.
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.replace("\x1b[2K", "\n")).split("\n")
    for text in ["warning: libjpeg: Corrupt JPEG data: 9", *(f"E0000 a real error {i}" for i in range(1, 5))]:
        assert [line for line in lines if text in line and not line.startswith(text)] == [], err
        assert any(line.startswith(text) for line in lines), (text, err)
    assert err.count("warning: libjpeg:") == 2  # once, and the count at the end
    assert "(4 times)" in err


def test_a_callback_is_bypassed_while_sys_stderr_writes_to_fd_2(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone set sys.stderr back to sys.__stderr__ (fd 2, the pipe): a callback printing there
    # would feed each line back into the filter, again and again.
    calls: list[str] = []

    def on_line(line: str) -> None:
        calls.append(line)
        sys.stderr.write(line)

    err = ""
    with filtered_stderr_fd(NOISE, on_line=on_line):
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        os.write(2, b"once\n")
        deadline = time.monotonic() + 30  # wait for the thread to handle the line (not a speed test)
        while not calls and "once" not in err and time.monotonic() < deadline:
            err += capfd.readouterr().err
        monkeypatch.undo()
    err += capfd.readouterr().err
    assert calls == []
    assert err == "once\n"
