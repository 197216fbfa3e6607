"""Fixtures for the sink tests: frame results, free ports, a real mosquitto broker, an MQTT listener,
a small tmpfs that fills up."""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecnn.sinks.base import Detection, FrameResult


def _load_root_conftest() -> Any:
    # conftest modules of areas without __init__.py all import as "conftest" and replace each
    # other in sys.modules, so the root one (require_tool) is loaded by path under its own name
    spec = importlib.util.spec_from_file_location("edgecnn_tests_root_conftest",
                                                  Path(__file__).resolve().parents[1] / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_root = _load_root_conftest()
require_tool = _root.require_tool
T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def make_result(
    frame: int = 1,
    detections: tuple[Detection, ...] = (),
    *,
    seconds: float | None = None,
    image: np.ndarray | None = None,
) -> FrameResult:
    """A FrameResult whose capture time is ``T0 + seconds`` (default: ``frame / 10`` s)."""
    ts = T0 + timedelta(seconds=frame / 10 if seconds is None else seconds)
    return FrameResult(
        ts=ts.isoformat().replace("+00:00", "Z"),
        frame=frame,
        source="test",
        model="tiny",
        latency_ms={"pre": 1.0, "infer": 5.0, "post": 0.5},
        detections=detections,
        image=image,
    )


def gray_frame(width: int = 320, height: int = 240, value: int = 128) -> np.ndarray:
    """A flat grey BGR frame: JPEG keeps it clean, so drawn colours can be checked."""
    return np.full((height, width, 3), value, np.uint8)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below Linux's ephemeral range
    (32768-60999): a client reconnecting to a stopped broker on an ephemeral port can be given
    that very port as its own and connect to itself (TCP self-connect), and the broker then
    cannot bind it again when it restarts."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32768)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32767")


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


class Broker:
    """A mosquitto process on a loopback port; can be stopped and started again on the same port."""

    def __init__(self, workdir: Path, security: str = "allow_anonymous true\n") -> None:
        self.exe = require_tool("mosquitto")
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            # as root mosquitto would switch to the "mosquitto" user, who cannot write to tmp_path
            f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\n{security}"
            f"persistence true\npersistence_location {workdir}/\n"
            f"log_dest file {workdir}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_until(self._listening, timeout=10):
            self.stop()
            logfile = self.workdir / "mosquitto.log"
            log = logfile.read_text() if logfile.exists() else ""
            raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{log}")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            logfile = self.workdir / "mosquitto.log"
            raise RuntimeError(f"mosquitto exited:\n{logfile.read_text() if logfile.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True


# the helpers as fixtures: test modules cannot import from a conftest reliably (see above)


@pytest.fixture(name="make_result")
def _make_result() -> Callable[..., FrameResult]:
    return make_result


@pytest.fixture(name="gray_frame")
def _gray_frame() -> Callable[..., np.ndarray]:
    return gray_frame


@pytest.fixture(name="free_port")
def _free_port() -> Callable[[], int]:
    return free_port


@pytest.fixture(name="wait_until")
def _wait_until() -> Callable[..., bool]:
    return wait_until


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for the test (a disk that fills up for real); needs root."""
    if os.geteuid() != 0:
        message = "mounting a tmpfs needs root"
        if _root.IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture
def chromium_exe() -> str:
    """Path of the chromium binary (fails under CI when missing, else skips)."""
    return require_tool("chromium")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A running mosquitto on a free loopback port (stopped at the end)."""
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@dataclass
class SecureBroker:
    """A broker that wants TLS (a self-signed certificate for 127.0.0.1) and a user name and password."""

    broker: Broker
    ca_file: Path
    username: str
    password: str


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    """mosquitto with a TLS listener and a password file, made with openssl and mosquitto_passwd."""
    openssl = require_tool("openssl")
    passwd = require_tool("mosquitto_passwd")
    cert, key, users = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "passwd"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    password = "pa55-" + os.urandom(6).hex()
    subprocess.run([passwd, "-b", "-c", str(users), "camera", password], check=True, capture_output=True)
    b = Broker(tmp_path, f"certfile {cert}\nkeyfile {key}\nallow_anonymous false\npassword_file {users}\n")
    b.start()
    yield SecureBroker(b, cert, "camera", password)
    b.stop()


class Listener:
    """A paho subscriber recording (topic, payload, retain) for the test to wait on.

    A fixed client id with ``clean_session=False`` and QoS 1 keeps its subscription in the
    broker's persistent session, so QoS 1 messages published while it is away still arrive.
    """

    def __init__(self, port: int, topic: str, client_id: str = "edgecnn-test-listener",
                 ca_file: Path | None = None, username: str | None = None, password: str | None = None,
                 ) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 1)
        self.subscribed = threading.Event()

        def on_connect(client: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            client.subscribe(topic, qos=1)

        def on_subscribe(*_: Any) -> None:
            self.subscribed.set()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            with self._lock:
                self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "listener did not subscribe"

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def records(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_listener() -> Iterator[Callable[..., Listener]]:
    """Factory of :class:`Listener` subscribers, closed at the end of the test."""
    made: list[Listener] = []

    def make(port: int, topic: str, client_id: str = "edgecnn-test-listener", **security: Any) -> Listener:
        made.append(Listener(port, topic, client_id, **security))
        return made[-1]

    yield make
    for listener in made:
        listener.close()
