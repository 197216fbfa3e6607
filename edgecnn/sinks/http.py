"""HTTP sink: a live page, health and Prometheus metrics, and an MJPEG preview.

Endpoints (stdlib :class:`~http.server.ThreadingHTTPServer` on its own daemon thread):

* ``/`` the live page: preview with boxes, latest detections, fps, source state.
* ``/healthz`` JSON; 200 when healthy, 503 when the last frame is stale or the source is not online.
* ``/metrics`` Prometheus text format 0.0.4.
* ``/latest.json`` the latest record (:meth:`FrameResult.to_record`) with fps and source state.
* ``/events.json`` the latest tracking events (``new`` / ``update`` / ``end``), numbered;
  ``?after=N`` gives only those after number ``N``.
* ``/stream`` MJPEG (``multipart/x-mixed-replace``) with boxes drawn, at most ``stream_fps``.
* ``/snapshot.jpg`` the latest frame with boxes.

Everything is read from the daemon's :class:`~edgecnn.daemon.state.DaemonStats`; without
one (outside the daemon) the sink keeps its own, fed by :meth:`HttpSink.emit`. The main
loop never encodes: a frame is drawn and JPEG-encoded on a request thread, at most once
per frame and ``stream_fps`` times a second, and the same bytes go to every client.

Binds to 127.0.0.1 by default. A non-loopback address needs ``auth_token``; with a token,
every endpoint but ``/healthz`` wants ``Authorization: Bearer <token>`` or ``?token=<token>``
(``<img>`` cannot send headers).

A socket that cannot bind is a runtime failure (exit 1: systemd restarts the daemon) when
it can pass by itself: the port held by another process, the address not up yet. It is a
config error (exit 2: fix the config) when no retry can help: a host name that does not
resolve, a port below 1024 without the privilege to bind it.
"""

from __future__ import annotations

import errno
import hmac
import importlib.resources
import ipaddress
import json
import logging
import math
import socket
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from edgecnn.daemon.state import DaemonStats
from edgecnn.errors import ConfigError, EdgecnnError
from edgecnn.sinks.base import FrameResult, Masks, Sink

log = logging.getLogger(__name__)

BOUNDARY = "edgecnnframe"
EVENTS_KEPT = 100  # the latest tracking events /events.json can give
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


class HttpConfig(BaseModel):
    """Settings of the ``http`` sink."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["http"] = Field(description="Selects this sink.")
    host: str = Field(
        "127.0.0.1", min_length=1, description="Address to bind; a non-loopback one needs auth_token."
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    auth_token: SecretStr | None = Field(
        None, min_length=16, description="Bearer token required by every endpoint but /healthz."
    )
    stream_fps: float = Field(5.0, gt=0, le=30, description="Most preview frames encoded per second.")
    jpeg_quality: int = Field(75, ge=10, le=100, description="JPEG quality of /stream and /snapshot.jpg.")
    max_width: int = Field(
        0, ge=0, le=4096, description="Shrink preview frames wider than this (pixels); 0 keeps the size."
    )
    max_clients: int = Field(4, ge=1, le=64, description="Concurrent /stream clients; more get 503.")

    @model_validator(mode="after")
    def _check(self) -> HttpConfig:
        if exposed_without_token(self):
            raise ValueError(
                f"refusing to serve on {self.host} without auth_token "
                "(bind to 127.0.0.1, or set a token of at least 16 characters)"
            )
        return self


def exposed_without_token(config: HttpConfig) -> bool:
    """Whether ``config`` would serve beyond this machine without a token (never allowed)."""
    return not is_loopback(config.host) and config.auth_token is None


def bind_error(host: str, port: int, exc: OSError) -> EdgecnnError:
    """The error to raise when ``host:port`` cannot be bound.

    :class:`ConfigError` (exit 2, systemd does not restart) only for what no retry can fix:
    a host name that does not resolve (not a temporary DNS failure) or no permission (a port
    below 1024 without root or CAP_NET_BIND_SERVICE). Anything else, notably EADDRINUSE and
    EADDRNOTAVAIL, is a runtime :class:`EdgecnnError` (exit 1, systemd restarts).
    """
    message = f"http sink: cannot listen on {host}:{port}: {exc.strerror or exc}"
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:  # the resolver is not reachable yet
            return EdgecnnError(message)
        return ConfigError(f"{message} (host must be an address of this machine)")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ConfigError(f"{message} (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
    return EdgecnnError(message)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


class _Preview:
    """The latest frame drawn and JPEG-encoded, shared by every client.

    A client asking for a frame newer than the one it has gets the cached JPEG if that is
    newer, else the latest frame is encoded (under a lock, so a client asking meanwhile
    waits and reuses the bytes). A new frame is encoded at most every ``1 / stream_fps``
    seconds, whatever the number of clients; waiting for a frame happens outside the lock.
    """

    def __init__(self, stats: DaemonStats, config: HttpConfig, masks: Masks = ()) -> None:
        self._stats = stats
        self._config = config
        self._masks = masks
        self._period = 1.0 / config.stream_fps
        self._lock = threading.Lock()
        self._frame = 0
        self._jpeg = b""
        self._encoded_at = -math.inf
        self.encodes = 0

    def next(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """A JPEG of a frame newer than ``after`` (its number and bytes); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                latest = self._stats.latest()
                now = time.monotonic()
                due = now - self._encoded_at >= self._period
                newest = latest is None or latest.frame <= self._frame or latest.image is None
                if self._jpeg and self._frame > after and (newest or not due):
                    return self._frame, self._jpeg
                if latest is not None and latest.image is not None and latest.frame > after and due:
                    self._jpeg = self._encode(latest)
                    self._frame = latest.frame
                    self._encoded_at = time.monotonic()
                    self.encodes += 1
                    return self._frame, self._jpeg
                next_slot = self._encoded_at + self._period
                seen = max(after, self._frame, latest.frame if latest is not None else 0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not due:
                time.sleep(max(0.0, min(next_slot - time.monotonic(), remaining)))
            elif self._stats.wait_for_result(after=seen, timeout=remaining) is None:
                return None  # no newer frame in time, or the daemon is stopping

    def _encode(self, result: FrameResult) -> bytes:
        import cv2  # with the first encoded frame: configs validate without OpenCV

        from edgecnn.sinks.draw import draw_detections, draw_masks, encode_jpeg

        assert result.image is not None
        image = draw_detections(draw_masks(result.image, self._masks), result.detections, copy=False)
        width = self._config.max_width
        if width and image.shape[1] > width:
            height = round(image.shape[0] * width / image.shape[1])
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return encode_jpeg(image, self._config.jpeg_quality)


class HttpSink(Sink):
    """Serve the live page, ``/healthz``, ``/metrics``, ``/latest.json``, ``/events.json``,
    ``/stream`` and ``/snapshot.jpg``.

    Args:
        config: the sink's settings.
        device: the device's name (page title).
        state: the daemon's :class:`DaemonStats`; None makes the sink keep its own from :meth:`emit`.
        masks: the config's object masks, shaded on the live picture.

    Raises:
        ConfigError: ``host`` is not a loopback address and there is no ``auth_token``.
    """

    def __init__(
        self, config: HttpConfig, *, device: str, state: DaemonStats | None = None, masks: Masks = ()
    ) -> None:
        if exposed_without_token(config):  # a config made without validation (model_construct)
            raise ConfigError(
                f"http sink: refusing to serve on {config.host} without auth_token "
                "(bind to 127.0.0.1, or set a token of at least 16 characters)"
            )
        self.config = config
        self.device = device
        self._own = state is None
        self.stats = DaemonStats(device) if state is None else state
        self.preview = _Preview(self.stats, config, masks)
        self.stream_clients = 0
        self._clients_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._page = importlib.resources.files("edgecnn.sinks").joinpath("http_page.html").read_bytes()
        self._events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT)
        self._events_seen = 0  # events numbered so far (the newest one's number)
        self._events_lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port: 0``)."""
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = self.config.host.strip("[]")
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> None:
        """Bind the socket and serve on a daemon thread.

        Raises:
            EdgecnnError: the socket cannot bind; a :class:`ConfigError` when no retry can help
                (see :func:`bind_error`).
        """
        handler = type("Handler", (_Handler,), {"sink": self})
        server_class = _Server6 if ":" in self.config.host else ThreadingHTTPServer
        try:
            server = server_class((self.config.host.strip("[]"), self.config.port), handler)
        except OSError as exc:
            raise bind_error(self.config.host, self.config.port, exc) from exc
        server.daemon_threads = True
        self._server = server
        if self._own:
            self.stats.set_ready()
        self._thread = threading.Thread(target=server.serve_forever, name="http-sink", daemon=True)
        self._thread.start()
        log.info("http sink: serving on %s", self.url)

    def emit(self, result: FrameResult) -> None:
        """Keep the result's tracking events for ``/events.json``. The daemon's stats keep the
        latest frame; without them, record it (a final result is no frame: skipped)."""
        if result.events:
            with self._events_lock:
                for event in result.events:
                    self._events_seen += 1
                    self._events.append({"seq": self._events_seen, "ts": result.ts, **event})
        if self._own and not result.final:
            self.stats.record(result)

    def status(self, state: str, detail: str = "") -> None:
        """Track the source's state when the sink keeps its own stats."""
        if self._own:
            self.stats.set_source_state(state, detail)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving; open streams end within about a second."""
        self._stopping.set()
        if self._own:
            self.stats.set_status("stopping")  # wakes stream threads waiting for a frame
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- what the endpoints return ----------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``/healthz``: (healthy, the few fields a probe needs)."""
        snap = self.stats.snapshot()
        keys = ("healthy", "status", "source_state", "frames", "fps", "last_frame_age_s")
        return bool(snap["healthy"]), {k: snap[k] for k in keys}

    def latest_record(self) -> dict[str, Any]:
        """``/latest.json``: the latest record plus fps, source state and frame count."""
        snap = self.stats.snapshot()
        latest = self.stats.latest()
        keys = ("device", "model", "source", "source_state", "source_detail", "fps", "frames",
                "last_frame_age_s", "healthy")
        return {**{k: snap[k] for k in keys}, "result": None if latest is None else latest.to_record()}

    def events(self, after: int = 0) -> dict[str, Any]:
        """``/events.json``: the kept events numbered above ``after``, oldest first, and
        ``last``, the newest number (0 before the first event), to ask ``after`` next time."""
        with self._events_lock:
            newer = [event for event in self._events if event["seq"] > after]
            return {"events": newer, "last": self._events_seen}

    def metrics(self) -> str:
        """``/metrics``: Prometheus text exposition format 0.0.4."""
        return prometheus_text(self.stats.snapshot(), self.stream_clients, self.preview.encodes)


def _escape(value: str, quote: bool = False) -> str:
    value = value.replace("\\", "\\\\").replace("\n", "\\n")
    return value.replace('"', '\\"') if quote else value


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def prometheus_text(snap: dict[str, Any], stream_clients: int = 0, encodes: int = 0) -> str:
    """Render a :meth:`DaemonStats.snapshot` as Prometheus text format 0.0.4.

    Every metric has one ``# HELP`` and one ``# TYPE`` line before its samples; counters end
    in ``_total``; times are in seconds.
    """
    latency = snap.get("latency_ms", {})
    sinks = sorted(snap.get("sinks", {}).items())
    names = {"device": snap["device"], "model": snap["model"], "source": snap["source"]}
    families: list[tuple[str, str, str, list[tuple[dict[str, str], float | None]]]] = [
        ("edgecnn_info", "gauge", "Device, model and source names (value always 1).", [(names, 1)]),
        ("edgecnn_frames_total", "counter", "Frames processed.", [({}, snap["frames"])]),
        ("edgecnn_fps", "gauge", "Frames processed per second, recent window.", [({}, snap["fps"])]),
        ("edgecnn_inference_seconds", "gauge", "Inference time per frame (moving average).",
         [({}, snap["inference_ms"] / 1000)]),
        ("edgecnn_stage_seconds", "gauge", "Time per frame by stage: pre, infer, post (moving average).",
         [({"stage": k}, v / 1000) for k, v in sorted(latency.items())]),
        ("edgecnn_last_frame_age_seconds", "gauge", "Seconds since the last frame (NaN before one).",
         [({}, snap["last_frame_age_s"])]),
        ("edgecnn_detections", "gauge", "Detections in the latest frame.", [({}, snap["detections"])]),
        ("edgecnn_source_online", "gauge", "1 while the source delivers frames, else 0.",
         [({}, int(snap["source_state"] == "online"))]),
        ("edgecnn_healthy", "gauge", "1 when /healthz answers 200, else 0.", [({}, int(snap["healthy"]))]),
        ("edgecnn_source_dropped_frames_total", "counter", "Frames the source dropped (the loop was busy).",
         [({}, snap.get("dropped", 0))]),
        ("edgecnn_source_reconnects_total", "counter", "Times the source reconnected.",
         [({}, snap.get("reconnects", 0))]),
        ("edgecnn_source_stalls_total", "counter", "Times the source stalled (no frame in time).",
         [({}, snap.get("stalls", 0))]),
        ("edgecnn_source_failures_total", "counter", "Failed source opens or reads.",
         [({}, snap.get("failures", 0))]),
        ("edgecnn_sink_dropped_total", "counter", "Records or frames each sink dropped.",
         [({"sink": name}, v["dropped"]) for name, v in sinks]),
        ("edgecnn_http_stream_clients", "gauge", "Open /stream connections.", [({}, stream_clients)]),
        ("edgecnn_http_jpeg_encodes_total", "counter", "Preview frames JPEG-encoded (shared by all clients).",
         [({}, encodes)]),
    ]
    lines: list[str] = []
    for name, kind, help_text, samples in families:
        lines += [f"# HELP {name} {_escape(help_text)}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(str(v), quote=True)}"' for k, v in labels.items())
            lines.append(f"{name}{{{label_text}}} {_number(value)}" if labels else f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`HttpSink` set as a class attribute by ``start()``."""

    sink: HttpSink
    server_version = "edgecnn"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a silent or stuck client may hold its thread

    def log_message(self, format: str, *args: Any) -> None:
        # the request line may hold ?token=...: log the path only, and only at debug level
        log.debug("http %s %s", self.address_string(), urlsplit(self.path).path)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        route = {
            "/": self._page, "/index.html": self._page, "/healthz": self._healthz, "/metrics": self._metrics,
            "/latest.json": self._latest, "/stream": self._stream, "/snapshot.jpg": self._snapshot,
            "/events.json": lambda: self._events(url.query),
        }.get(url.path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", TEXT)
        elif route != self._healthz and not self._authorised(url.query):
            self._send(HTTPStatus.UNAUTHORIZED, b"missing or wrong token\n", TEXT,
                       {"WWW-Authenticate": 'Bearer realm="edgecnn"'})
        else:
            route()

    def _authorised(self, query: str) -> bool:
        token = self.sink.config.auth_token
        if token is None:
            return True
        expected = token.get_secret_value().encode()
        header = self.headers.get("Authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        given = given or (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), expected)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None,
              ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode() + b"\n", "application/json")

    def _page(self) -> None:
        self._send(HTTPStatus.OK, self.sink._page, "text/html; charset=utf-8",
                   {"Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                    "script-src 'unsafe-inline'; img-src 'self'"})

    def _healthz(self) -> None:
        healthy, body = self.sink.health()
        self._json(HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE, body)

    def _metrics(self) -> None:
        self._send(HTTPStatus.OK, self.sink.metrics().encode(), PROMETHEUS_CONTENT_TYPE)

    def _latest(self) -> None:
        self._json(HTTPStatus.OK, self.sink.latest_record())

    def _events(self, query: str) -> None:
        after = (parse_qs(query).get("after") or ["0"])[0]
        if not (after.isascii() and after.isdigit()):
            self._send(HTTPStatus.BAD_REQUEST, b"after must be a whole number\n", TEXT)
            return
        self._json(HTTPStatus.OK, self.sink.events(int(after)))

    def _snapshot(self) -> None:
        got = self.sink.preview.next(after=0, timeout=0.0)
        if got is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", TEXT)
        else:
            self._send(HTTPStatus.OK, got[1], "image/jpeg", {"X-Frame": str(got[0])})

    def _stream(self) -> None:
        sink = self.sink
        with sink._clients_lock:
            if sink.stream_clients >= sink.config.max_clients:
                busy = True
            else:
                busy = False
                sink.stream_clients += 1
        if busy:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many stream clients\n", TEXT)
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            frame = 0
            while not sink._stopping.is_set():
                got = sink.preview.next(after=frame, timeout=1.0)
                if got is None:
                    sink._stopping.wait(0.1)  # no new frame: do not spin while the daemon stops
                    continue
                frame, jpeg = got
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                        f"X-Frame: {frame}\r\n\r\n").encode()
                self.wfile.write(head + jpeg + b"\r\n")
                self.wfile.flush()
        except OSError:
            pass  # the client went away or stopped reading (timeout)
        finally:
            with sink._clients_lock:
                sink.stream_clients -= 1
