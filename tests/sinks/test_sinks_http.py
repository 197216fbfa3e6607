"""The HTTP sink: endpoints, auth, Prometheus text, and the MJPEG stream read back with OpenCV."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edgecnn.daemon.state import DaemonStats
from edgecnn.errors import ConfigError, EdgecnnError, UserError
from edgecnn.sinks import build_sink, failed, plugins
from edgecnn.sinks.base import Detection, SinkContext
from edgecnn.sinks.draw import color_for
from edgecnn.sinks.http import PROMETHEUS_CONTENT_TYPE, HttpConfig, HttpSink, is_loopback, prometheus_text

TOKEN = "s3cret-token-0123456789"
PERSON = Detection("person", 0, 0.91, (100.0, 80.0, 300.0, 400.0))
DOG = Detection("dog", 1, 0.66, (360.0, 200.0, 600.0, 440.0))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Dropper:
    def __init__(self, dropped: int) -> None:
        self.dropped = dropped


def get(url: str, token: str | None = None, header: bool = True) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` (with a bearer header or ``?token=``); returns status, headers, body."""
    if token and not header:
        url += ("&" if "?" in url else "?") + f"token={token}"
    headers = {"Authorization": f"Bearer {token}"} if token and header else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stats(clock: FakeClock) -> DaemonStats:
    s = DaemonStats("cam-\"1\"", fps_window=5.0, stale_after=10.0, clock=clock)
    s.set_names(model="tiny-det", source="/dev/video0")
    return s


@pytest.fixture
def served(stats: DaemonStats) -> Iterator[HttpSink]:
    config = HttpConfig(type="http", port=0, stream_fps=10, jpeg_quality=90)
    sink = HttpSink(config, device="cam", state=stats)
    sink.start()
    yield sink
    sink.stop()


def test_http_config_and_loopback_rule() -> None:
    cfg = HttpConfig(type="http")
    assert (cfg.host, cfg.port, cfg.stream_fps, cfg.jpeg_quality, cfg.max_width, cfg.max_clients) == (
        "127.0.0.1", 8080, 5.0, 75, 0, 4)
    for bad in ({"stream_fps": 0}, {"jpeg_quality": 101}, {"auth_token": "short"}, {"port": 70000}, {"x": 1}):
        with pytest.raises(ValidationError):
            HttpConfig(type="http", **bad)
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.20", "pi.local"]))
    for host in ("0.0.0.0", "192.168.1.20"):
        with pytest.raises(ValidationError, match=f"refusing to serve on {host} without auth_token"):
            HttpConfig(type="http", host=host)
        with pytest.raises(ConfigError, match="auth_token"):  # a config that skipped validation
            HttpSink(HttpConfig.model_construct(type="http", host=host, auth_token=None), device="cam")
    HttpSink(HttpConfig(type="http", host="0.0.0.0", auth_token=TOKEN), device="cam")  # allowed with a token


def test_http_port_in_use_is_a_runtime_failure(stats: DaemonStats) -> None:
    # exit 1, not 2: the service unit has RestartPreventExitStatus=2, and a clash can pass
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        sink = HttpSink(HttpConfig(type="http", port=port), device="cam", state=stats)
        in_use = re.escape(f"127.0.0.1:{port}: Address already in use")
        with pytest.raises(EdgecnnError, match=in_use) as info:
            sink.start()
        assert not isinstance(info.value, UserError) and info.value.exit_code == 1
    sink.start()  # the port is free again: the restart systemd makes succeeds
    try:
        assert get(f"{sink.url}/healthz")[0] == 503
    finally:
        sink.stop()


def test_http_bind_errors_that_retrying_cannot_fix_are_config_errors(free_port) -> None:
    # an address this machine does not have (yet): EADDRNOTAVAIL, may come with the network
    absent = HttpSink(HttpConfig(type="http", host="192.0.2.1", auth_token=TOKEN, port=free_port()),
                      device="cam")
    with pytest.raises(EdgecnnError, match="Cannot assign requested address") as info:
        absent.start()
    assert info.value.exit_code == 1
    # a host name that does not resolve at all
    nowhere = HttpSink(HttpConfig(type="http", host="no-such-host.invalid", auth_token=TOKEN,
                                  port=free_port()), device="cam")
    with pytest.raises(ConfigError, match=r"no-such-host\.invalid") as config_error:
        nowhere.start()
    assert config_error.value.exit_code == 2


PRIVILEGED = textwrap.dedent("""
    import os
    from edgecnn.errors import ConfigError
    from edgecnn.sinks.http import HttpConfig, HttpSink
    sink = HttpSink(HttpConfig(type="http", port=1000), device="cam")  # imports done as root
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)  # nobody: no CAP_NET_BIND_SERVICE
    try:
        sink.start()
    except ConfigError as exc:
        print(exc.exit_code, exc)
""")


def test_http_privileged_port_without_permission_is_a_config_error() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user")
    child = subprocess.run([sys.executable, "-c", PRIVILEGED], capture_output=True, text=True, check=True)
    out = child.stdout
    assert out.startswith("2 http sink: cannot listen on 127.0.0.1:1000: Permission denied"), out
    assert "CAP_NET_BIND_SERVICE" in out


def test_http_plugins_build_through_the_registry(stats: DaemonStats) -> None:
    assert {"mqtt", "http", "snapshots"} <= set(plugins()), failed()
    sink = build_sink(HttpConfig(type="http", port=0), SinkContext(device="cam", state=stats))
    assert isinstance(sink, HttpSink) and sink.stats is stats


def test_http_healthz_turns_503_when_frames_stop(served: HttpSink, stats: DaemonStats, clock: FakeClock,
                                                 make_result) -> None:
    status, _, body = get(served.url + "/healthz")
    assert status == 503 and json.loads(body)["frames"] == 0  # not ready yet
    stats.set_ready()
    stats.set_source_state("online")
    for i in range(1, 4):
        clock.now += 0.1
        stats.record(make_result(i))
    status, headers, body = get(served.url + "/healthz")
    health = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert health["healthy"] and health["frames"] == 3 and health["source_state"] == "online"
    assert health["last_frame_age_s"] == 0 and health["fps"] == pytest.approx(stats.fps(), abs=1e-3)
    clock.now += 10.5  # no frame for longer than stale_after
    status, _, body = get(served.url + "/healthz")
    assert status == 503 and json.loads(body)["last_frame_age_s"] == pytest.approx(10.5)
    stats.record(make_result(4))
    assert get(served.url + "/healthz")[0] == 200
    stats.set_source_state("offline", "camera unplugged")
    assert get(served.url + "/healthz")[0] == 503


def parse_prometheus(text: str) -> tuple[dict[str, str], dict[str, str], dict[tuple[str, str], float]]:
    """HELP and TYPE per metric, and every sample keyed by (name, raw label text)."""
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    samples: dict[tuple[str, str], float] = {}
    assert text.endswith("\n")
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, doc = line[7:].split(" ", 1)
            assert name not in helps and doc
            helps[name] = doc
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert name not in types and kind in {"counter", "gauge"}
            assert name in helps, f"TYPE before HELP for {name}"
            types[name] = kind
        else:
            match = sample.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.group(1), match.group(2) or "", match.group(3)
            assert name in helps and name in types, f"sample {name} without HELP/TYPE"
            samples[(name, labels)] = float(value)
    return helps, types, samples


def test_http_metrics_match_the_state(served: HttpSink, stats: DaemonStats, clock: FakeClock,
                                      make_result) -> None:
    stats.set_ready()
    stats.set_source_state("online")
    stats.set_counters(lambda: {"dropped": 3, "reconnects": 2, "stalls": 1, "failures": 0})
    stats.set_sinks([("mqtt", Dropper(7)), ("jsonl", Dropper(0))])
    for i in range(1, 11):
        clock.now += 0.25
        stats.record(make_result(i, (PERSON, DOG)))
    clock.now += 0.5
    status, headers, body = get(served.url + "/metrics")
    assert status == 200 and headers["Content-Type"] == PROMETHEUS_CONTENT_TYPE
    helps, types, samples = parse_prometheus(body.decode())
    snap = stats.snapshot()
    assert helps.keys() == types.keys() and {name for name, _ in samples} == set(types)
    assert all(name.endswith("_total") for name, kind in types.items() if kind == "counter")
    assert samples[("edgecnn_frames_total", "")] == 10
    assert samples[("edgecnn_fps", "")] == pytest.approx(snap["fps"]) and snap["fps"] > 0
    assert samples[("edgecnn_inference_seconds", "")] == pytest.approx(0.005)
    assert samples[("edgecnn_stage_seconds", '{stage="post"}')] == pytest.approx(0.0005)
    assert samples[("edgecnn_last_frame_age_seconds", "")] == pytest.approx(0.5)
    assert samples[("edgecnn_detections", "")] == 2
    assert samples[("edgecnn_source_online", "")] == 1 and samples[("edgecnn_healthy", "")] == 1
    assert samples[("edgecnn_source_dropped_frames_total", "")] == 3
    assert samples[("edgecnn_source_reconnects_total", "")] == 2
    assert samples[("edgecnn_sink_dropped_total", '{sink="mqtt"}')] == 7
    assert samples[("edgecnn_sink_dropped_total", '{sink="jsonl"}')] == 0
    # label values are escaped: the device name holds double quotes
    assert samples[("edgecnn_info", '{device="cam-\\"1\\"",model="tiny-det",source="/dev/video0"}')] == 1
    stats.set_source_state("offline")
    _, _, samples = parse_prometheus(get(served.url + "/metrics")[2].decode())
    assert samples[("edgecnn_source_online", "")] == 0 and samples[("edgecnn_healthy", "")] == 0


def test_prometheus_text_before_the_first_frame() -> None:
    stats = DaemonStats("cam")
    _, _, samples = parse_prometheus(prometheus_text(stats.snapshot()))
    assert math.isnan(samples[("edgecnn_last_frame_age_seconds", "")])
    assert samples[("edgecnn_frames_total", "")] == 0


def test_http_latest_json_and_snapshot(served: HttpSink, stats: DaemonStats, make_result, gray_frame) -> None:
    assert get(served.url + "/snapshot.jpg")[0] == 503
    assert json.loads(get(served.url + "/latest.json")[2])["result"] is None
    stats.set_source_state("online")
    result = make_result(7, (PERSON,), image=gray_frame(640, 480))
    stats.record(result)
    latest = json.loads(get(served.url + "/latest.json")[2])
    assert latest["result"] == result.to_record()
    assert latest["source_state"] == "online" and latest["frames"] == 1 and "fps" in latest
    status, headers, body = get(served.url + "/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and headers["X-Frame"] == "7"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    assert_box_edge(image, PERSON)


def test_http_token_required_when_set(stats: DaemonStats, make_result, gray_frame) -> None:
    stats.record(make_result(1, (PERSON,), image=gray_frame()))
    sink = HttpSink(HttpConfig(type="http", port=0, auth_token=TOKEN), device="cam", state=stats)
    sink.start()
    try:
        for path in ("/", "/metrics", "/latest.json", "/snapshot.jpg", "/stream"):
            status, headers, _ = get(sink.url + path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
            assert get(sink.url + path, token="wrong-token-0123456789")[0] == 401, path
            assert get(sink.url + path, token=TOKEN[:-1])[0] == 401, path
        for path in ("/", "/metrics", "/latest.json", "/snapshot.jpg"):
            assert get(sink.url + path, token=TOKEN)[0] == 200, path
            assert get(sink.url + path, token=TOKEN, header=False)[0] == 200, path
        assert get(sink.url + "/healthz")[0] in (200, 503)  # probes need no token
        assert get(sink.url + "/nope", token=TOKEN)[0] == 404
        cap = cv2.VideoCapture(f"{sink.url}/stream?token={TOKEN}", cv2.CAP_FFMPEG)
        ok, frame = cap.read()
        cap.release()
        assert ok and frame.shape == (240, 320, 3)
    finally:
        sink.stop()


def assert_box_edge(image: np.ndarray, det: Detection) -> None:
    """The box's left edge (mid-height) has the class colour; the inside and outside stay grey."""
    assert det.box is not None
    x1, y1, _, y2 = (round(v) for v in det.box)
    ym = (y1 + y2) // 2
    want = np.array(color_for(det.class_id), float)
    edge = image[ym - 2:ym + 3, x1 - 1:x1 + 2].reshape(-1, 3).astype(float)
    assert np.linalg.norm(edge - want, axis=1).min() < 60, (edge, want)
    for x in (x1 - 12, x1 + 12):
        assert np.abs(image[ym, x].astype(float) - 128).max() < 12, image[ym, x]


class Emitter:
    """A stand-in for the daemon's loop: records frames into the stats at about ``fps``."""

    def __init__(self, stats: DaemonStats, make_result: Any, image: np.ndarray, fps: float = 50) -> None:
        self.stats, self.make_result, self.image, self.period = stats, make_result, image, 1 / fps
        self.frames = 0
        self.detections: tuple[Detection, ...] = (PERSON, DOG)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.frames += 1
            self.stats.record(self.make_result(self.frames, self.detections, image=self.image))
            time.sleep(self.period)

    def __enter__(self) -> Emitter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_http_stream_reads_in_opencv_with_boxes_drawn(served: HttpSink, stats: DaemonStats, make_result,
                                                      gray_frame) -> None:
    stats.set_source_state("online")
    with Emitter(stats, make_result, gray_frame(640, 480)):
        cap = cv2.VideoCapture(served.url + "/stream", cv2.CAP_FFMPEG)
        assert cap.isOpened()
        frames = []
        for _ in range(5):
            ok, frame = cap.read()
            assert ok
            frames.append(frame)
        cap.release()
    for frame in frames:
        assert frame.shape == (480, 640, 3)
        assert_box_edge(frame, PERSON)
        assert_box_edge(frame, DOG)


def read_parts(url: str, count: int) -> list[tuple[int, bytes]]:
    """Read ``count`` parts of a multipart MJPEG response by hand: (X-Frame, JPEG bytes)."""
    parts = []
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=edgecnnframe"
        while len(parts) < count:
            assert response.readline() == b"--edgecnnframe\r\n"
            headers = {}
            while (line := response.readline()) != b"\r\n":
                key, value = line.decode().split(":", 1)
                headers[key.lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            jpeg = response.read(int(headers["content-length"]))
            assert response.read(2) == b"\r\n"
            parts.append((int(headers["x-frame"]), jpeg))
    return parts


@pytest.mark.slow
def test_http_stream_is_rate_limited_and_encoded_once_for_all_clients(served: HttpSink, stats: DaemonStats,
                                                                       make_result, gray_frame) -> None:
    with Emitter(stats, make_result, gray_frame(), fps=50) as emitter:
        time.sleep(0.3)
        assert served.preview.encodes == 0  # nothing is encoded while nobody watches
        got: list[list[tuple[int, bytes]]] = [[], []]
        start = time.monotonic()
        readers = [threading.Thread(target=lambda k=k: got[k].extend(read_parts(served.url + "/stream", 12)))
                   for k in range(2)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(30)
        elapsed = time.monotonic() - start
        produced = emitter.frames
    assert all(len(parts) == 12 for parts in got)
    for parts in got:
        numbers = [n for n, _ in parts]
        assert numbers == sorted(set(numbers))  # each part is a newer frame
        assert cv2.imdecode(np.frombuffer(parts[-1][1], np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    # two clients at stream_fps=10 while the loop ran at about 50 fps: frames are shared, not re-encoded
    shared = {n for n, _ in got[0]} & {n for n, _ in got[1]}
    assert len(shared) >= 6
    by_frame = {n: jpeg for parts in got for n, jpeg in parts}
    assert all(jpeg == by_frame[n] for parts in got for n, jpeg in parts)
    assert served.preview.encodes <= elapsed * 10 + 2  # rate limit: at most stream_fps encodes a second
    assert served.preview.encodes < produced / 2



def test_http_stream_client_limit(stats: DaemonStats, make_result, gray_frame, wait_until) -> None:
    image = gray_frame()
    stats.record(make_result(1, (PERSON,), image=image))
    sink = HttpSink(HttpConfig(type="http", port=0, max_clients=1), device="cam", state=stats)
    sink.start()
    try:
        with urllib.request.urlopen(sink.url + "/stream", timeout=10) as first:
            assert first.readline() == b"--edgecnnframe\r\n"
            assert sink.stream_clients == 1
            status, _, body = get(sink.url + "/stream")
            assert status == 503 and b"too many" in body
            assert get(sink.url + "/snapshot.jpg")[0] == 200  # other endpoints are not limited

        def next_frame() -> bool:  # the closed client is noticed at the next write
            stats.record(make_result(stats.frames + 1, (PERSON,), image=image))
            return sink.stream_clients == 0

        assert wait_until(next_frame, interval=0.1)
    finally:
        sink.stop()


def test_sink_modules_stay_board_side() -> None:
    code = ("import sys, edgecnn.sinks.http, edgecnn.sinks.mqtt, edgecnn.sinks.snapshots; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_http_picture_shades_the_masks(stats: DaemonStats, make_result, gray_frame) -> None:
    """The live picture shows where detections are dropped: the masked top-right quarter is
    darker, the rest of the frame is as it was, and boxes are still drawn."""
    quarter = ((0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (0.5, 0.5))
    context = SinkContext(device="cam", state=stats, masks=(quarter,))
    sink = build_sink(HttpConfig(type="http", port=0, jpeg_quality=95), context)
    assert isinstance(sink, HttpSink)
    sink.start()
    try:
        stats.record(make_result(3, (PERSON,), image=gray_frame(640, 480, value=128)))
        status, _, body = get(sink.url + "/snapshot.jpg")
    finally:
        sink.stop()
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).astype(int)
    assert status == 200
    assert abs(image[40:200, 400:600].mean() - (128 + 40) / 2) < 4  # inside: half shaded
    assert abs(image[300:460, 400:600].mean() - 128) < 2  # outside: untouched
    assert_box_edge(image.astype(np.uint8), PERSON)


def test_a_sink_keeping_its_own_stats_does_not_count_the_final_result(make_result) -> None:
    # outside the daemon the sink counts frames itself; the daemon's last result at stop is none
    sink = HttpSink(HttpConfig(type="http", port=0), device="cam")
    sink.emit(make_result(1))
    sink.emit(dataclasses.replace(make_result(1), events=({"type": "end", "id": 1},), final=True))
    latest = sink.stats.latest()
    assert sink.stats.snapshot()["frames"] == 1 and latest is not None and not latest.final


def _event(kind: str, track_id: int) -> dict[str, Any]:
    return {"type": kind, "id": track_id, "label": "person", "score": 0.9, "box": [1.0, 2.0, 3.0, 4.0],
            "start": "2026-12-01T10:00:00.000Z", "zones": []}


def test_http_events_json_numbers_the_events_and_keeps_the_latest(served: HttpSink, make_result) -> None:
    assert json.loads(get(served.url + "/events.json")[2]) == {"events": [], "last": 0}
    served.emit(make_result(1))  # a frame without events adds none
    served.emit(dataclasses.replace(make_result(2), events=(_event("new", 1), _event("new", 2))))
    served.emit(dataclasses.replace(make_result(3), events=(_event("end", 1),), final=True))
    body = json.loads(get(served.url + "/events.json")[2])
    assert body["last"] == 3
    seen = [(e["seq"], e["type"], e["id"]) for e in body["events"]]
    assert seen == [(1, "new", 1), (2, "new", 2), (3, "end", 1)]
    assert body["events"][0] == {"seq": 1, "ts": make_result(2).ts, **_event("new", 1)}
    # ?after= gives only the newer ones; a page polls with the last number it saw
    after = json.loads(get(served.url + "/events.json?after=2")[2])
    assert [e["seq"] for e in after["events"]] == [3] and after["last"] == 3
    assert json.loads(get(served.url + "/events.json?after=3")[2])["events"] == []
    for bad in ("x", "-1", "1.5", "%C2%B2"):  # "²" is a digit to str.isdigit
        status, _, text = get(served.url + f"/events.json?after={bad}")
        assert status == 400 and text == b"after must be a whole number\n", bad
    # only the latest EVENTS_KEPT stay; numbers go on
    for frame in range(4, 4 + 150):
        served.emit(dataclasses.replace(make_result(frame), events=(_event("new", frame),)))
    body = json.loads(get(served.url + "/events.json")[2])
    seqs = [e["seq"] for e in body["events"]]
    assert body["last"] == 153 and seqs == list(range(54, 154)) and len(seqs) == 100


def test_http_events_json_needs_the_token(stats: DaemonStats) -> None:
    sink = HttpSink(HttpConfig(type="http", port=0, auth_token=TOKEN), device="cam", state=stats)
    sink.start()
    try:
        assert get(sink.url + "/events.json")[0] == 401
        assert get(sink.url + "/events.json?after=0", token=TOKEN, header=False)[0] == 200
    finally:
        sink.stop()
