"""MQTT sink: one JSON record per frame to ``<prefix>/<device>/detections``.

``<prefix>/<device>/status`` is retained: ``online`` once connected, ``offline`` through
the broker's last will when the process dies, and published before a clean stop. The
source's state (``online`` / ``offline`` / ...) goes retained to ``<prefix>/<device>/source``
as ``{"state": .., "detail": ..}``. A detector's count of objects per label goes retained to
``<prefix>/<device>/<label>`` when it changes, with Home Assistant discovery configs on
request (:mod:`edgecnn.sinks._homeassistant`). With tracking on, each ``new`` / ``update`` /
``end`` event (:mod:`edgecnn.daemon.tracking`) goes, not retained, to
``<prefix>/<device>/events`` (Frigate's ``frigate/events``), also when ``skip_empty`` leaves
the frame out. The daemon's :attr:`~edgecnn.sinks.base.FrameResult.final` result at stop,
the ``end`` events of the objects still followed, goes to that topic only (it is no frame:
no record, the counts stay), and :meth:`MqttSink.stop` sends it before disconnecting.

:meth:`MqttSink.emit` only serialises the record and appends it to a bounded queue; a
publisher thread hands messages to paho, whose own network thread does the I/O and
reconnects with exponential back-off. While the broker is away the queue keeps the
newest ``queue_size`` messages; older ones are dropped and counted in ``dropped``.

An outage is logged, not retried in silence: the first failed connection attempt logs one
WARNING with the reason (connection refused, host name does not resolve, refused by the
broker, ...), a reminder follows every :attr:`MqttSink.remind_s` seconds while it lasts,
and the connection coming back logs one INFO line with the messages dropped meanwhile.
Nothing logged holds the password.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from edgecnn.errors import ConfigError
from edgecnn.sinks._homeassistant import count_labels, discovery_messages, label_topics
from edgecnn.sinks.base import FrameResult, Sink

log = logging.getLogger(__name__)


class MqttConfig(BaseModel):
    """Settings of the ``mqtt`` sink."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: Literal["mqtt"] = Field(description="Selects this sink.")
    host: str = Field("127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).")
    topic_prefix: str = Field(
        "edgecnn", min_length=1, pattern=r"^[^#+\x00]*[^#+/\x00]$",
        description="First topic level(s); topics are <prefix>/<device>/detections|status|source|events.",
    )
    qos: int = Field(0, ge=0, le=2, description="QoS of detection messages (status: 0, the will: 1).")
    client_id: str | None = Field(
        None, min_length=1, max_length=128, description="MQTT client id; default edgecnn-<device>."
    )
    username: str | None = Field(None, min_length=1, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password (never logged).")
    tls: bool = Field(False, description="Connect with TLS.")
    ca_file: Path | None = Field(None, description="CA bundle for TLS; default: the system's CAs.")
    cert_file: Path | None = Field(None, description="Client certificate for TLS client authentication.")
    key_file: Path | None = Field(None, description="Private key of cert_file.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="Seconds between keep-alive pings.")
    reconnect_min_s: int = Field(1, ge=1, le=300, description="First reconnect delay; doubles per attempt.")
    reconnect_max_s: int = Field(30, ge=1, le=3600, description="Longest reconnect delay.")
    queue_size: int = Field(
        256, ge=1, le=100_000, description="Messages kept while the broker is away; older ones are dropped."
    )
    skip_empty: bool = Field(False, description="Do not publish frames without detections.")
    counts: bool = Field(
        True,
        description="Detectors: publish each label's number of objects, retained, to "
        "<prefix>/<device>/<label> when it changes (Frigate's object topics).",
    )
    home_assistant: bool = Field(
        False,
        description="Publish Home Assistant MQTT discovery configs for the counts: a sensor and an occupancy "
        "binary sensor per label.",
    )
    discovery_prefix: str = Field(
        "homeassistant",
        min_length=1,
        pattern=r"^[^#+\x00]*[^#+/\x00]$",
        description="Home Assistant's discovery prefix.",
    )

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if self.password is not None and self.username is None:
            raise ValueError("password needs a username")
        if not self.tls and (self.ca_file or self.cert_file or self.key_file):
            raise ValueError("ca_file, cert_file and key_file need tls: true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.home_assistant and not self.counts:
            raise ValueError("home_assistant needs counts: true (the sensors show the counts)")
        return self


def _reason(exc: BaseException | None) -> str:
    """Why a connection attempt failed, in a few words (``Connection refused``)."""
    if isinstance(exc, socket.gaierror):
        return f"host name does not resolve ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return (str(exc) or type(exc).__name__) if exc is not None else "connection failed"


class MqttSink(Sink):
    """Publish frame records to an MQTT broker without ever blocking :meth:`emit`.

    Args:
        config: the sink's settings.
        device: the device name, used as a topic level.
        labels: the model's labels (the count topics).
        task: the model's task; counts are for detectors only.
        model: the model's name (Home Assistant's device model).
        zones: the config's zone names: counts per zone go to ``<prefix>/<device>/<zone>/<label>``.

    Attributes:
        dropped: messages discarded because the queue was full, or still queued at :meth:`stop`.
        published: messages handed to paho.
        reconnects: successful connections after the first one.
        connect_failures: connection attempts that failed.
        remind_s: seconds between reminders while the broker stays unreachable.
    """

    remind_s: float = 300.0

    def __init__(
        self,
        config: MqttConfig,
        *,
        device: str,
        labels: tuple[str, ...] = (),
        task: str = "detect",
        model: str = "",
        zones: tuple[str, ...] = (),
    ) -> None:
        if not device or any(c in device for c in "/#+\x00"):
            raise ConfigError(f"device name {device!r} cannot be an MQTT topic level (no / # + allowed)")
        self.config = config
        self.device = device
        base = f"{config.topic_prefix}/{device}"
        self.topic_detections = f"{base}/detections"
        self.topic_status = f"{base}/status"
        self.topic_source = f"{base}/source"
        self.topic_events = f"{base}/events"
        self.model = model
        self.labels = labels if config.counts and task == "detect" else ()
        self.zones = zones if self.labels else ()
        # count topics by (zone or None for the whole frame, label)
        self.topic_counts = {(None, label): t for label, t in label_topics(base, self.labels).items()}
        for zone in self.zones:
            for label, topic in label_topics(f"{base}/{zone}", self.labels).items():
                self.topic_counts[zone, label] = topic
        self._counts = dict.fromkeys(self.topic_counts, 0)  # the newest frame's
        self.dropped = 0
        self.published = 0
        self.reconnects = 0
        self.connect_failures = 0
        self._connects = 0
        # outage bookkeeping, touched by paho's network thread only
        self._down_since: float | None = None  # monotonic time the broker went away (or start())
        self._down_dropped = 0  # ``dropped`` at that time
        self._warned_at: float | None = None  # last failure warning of this outage
        self._refused = False  # the broker refused this attempt (its disconnect is not news)
        self._queue: deque[tuple[str, bytes, int, bool]] = deque()
        self._cond = threading.Condition()
        self._connected = False
        self._closing = False
        self._abort = False
        self._source: bytes | None = None
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._last_sent: Any = None  # paho's MQTTMessageInfo of the newest QoS>0 message sent

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected

    def start(self) -> None:
        """Create the paho client, start its network thread and the publisher thread."""
        import paho.mqtt.client as mqtt  # optional dependency: pip install edgecnn[mqtt]

        cfg = self.config
        client_id = cfg.client_id or f"edgecnn-{self.device}"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        if cfg.tls:
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client.will_set(self.topic_status, "offline", qos=1, retain=True)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.max_queued_messages_set(cfg.queue_size)  # bounds paho's own store of QoS>0 messages
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        self._client = client
        self._down_since, self._down_dropped = time.monotonic(), 0
        log.info("mqtt sink: broker %s:%d, topic %s", cfg.host, cfg.port, self.topic_detections)
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        client.loop_start()
        self._thread = threading.Thread(target=self._run, name=f"mqtt-sink-{self.device}", daemon=True)
        self._thread.start()

    def emit(self, result: FrameResult) -> None:
        """Queue the frame's record, its events and the counts that changed, for publishing (a
        final result: its events alone); returns at once."""
        if self.labels and not result.final:
            counts = self._counts_of(result)
            changed = [key for key, n in counts.items() if n != self._counts[key]]
            self._counts = counts
            # On a change only. The newest message of a count is its value now: the queue drops
            # the oldest messages first, and the counts published at (re)connect go out before it.
            for key in changed:
                self._put(self.topic_counts[key], str(counts[key]).encode(), self.config.qos, True)
        for event in result.events:
            payload = json.dumps(event, separators=(",", ":")).encode()
            self._put(self.topic_events, payload, self.config.qos, False)
        if result.final or (self.config.skip_empty and not result.detections):
            return
        payload = json.dumps(result.to_record(), separators=(",", ":")).encode()
        self._put(self.topic_detections, payload, self.config.qos, False)

    def _counts_of(self, result: FrameResult) -> dict[tuple[str | None, str], int]:
        """The number of objects of each label in the frame (zone None) and in each zone."""
        boxed = [d for d in result.detections if d.box is not None]
        counts = {}
        for zone in (None, *self.zones):
            inside = [d.label for d in boxed if zone is None or zone in d.zones]
            counts.update({(zone, label): n for label, n in count_labels(self.labels, inside).items()})
        return counts

    def status(self, state: str, detail: str = "") -> None:
        """Publish the source's state, retained, to ``<prefix>/<device>/source``."""
        self._source = json.dumps({"state": state, "detail": detail}).encode()
        self._put(self.topic_source, self._source, 0, True)

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued and see it acknowledged (within ``timeout``), publish ``offline``
        and disconnect."""
        if self._client is None:
            return
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            self._abort = True  # the broker is away or too slow: what is left is dropped
            self.dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(1.0)
        if self._connected:
            self._wait_acknowledged(max(0.1, deadline - time.monotonic()))
            info = self._client.publish(self.topic_status, "offline", qos=0, retain=True)
            info.wait_for_publish(timeout=max(0.1, timeout / 2))
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None

    def _wait_acknowledged(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds until the broker has acknowledged the QoS>0 messages
        sent (it does so in order: the newest one's acknowledgement is the last). Closing the
        connection sooner can lose them: mosquitto 2.0.11, failing to send a PUBACK to a client
        that just closed, drops the connection ("out of memory") and publishes the will."""
        info = self._last_sent
        if info is None:
            return
        with contextlib.suppress(ValueError, RuntimeError):  # the connection dropped meanwhile
            info.wait_for_publish(timeout)

    def _put(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        with self._cond:
            if len(self._queue) >= self.config.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((topic, payload, qos, retain))
            self._cond.notify()

    def _run(self) -> None:
        from paho.mqtt.client import MQTT_ERR_NO_CONN, MQTT_ERR_QUEUE_SIZE, MQTT_ERR_SUCCESS

        client = self._client
        while True:
            with self._cond:
                self._cond.wait_for(lambda: (self._queue and self._connected) or self._closing or self._abort)
                if self._abort or not (self._queue and self._connected):
                    return  # stop() was called and nothing more can be sent
                topic, payload, qos, retain = item = self._queue.popleft()
            info = client.publish(topic, payload, qos=qos, retain=retain)
            rc = info.rc
            if rc == MQTT_ERR_SUCCESS or (rc == MQTT_ERR_NO_CONN and qos > 0):  # QoS>0: paho resends it
                self.published += 1
                if qos > 0 and rc == MQTT_ERR_SUCCESS:
                    self._last_sent = info
                continue
            # not taken: the connection dropped just now (QoS 0), or paho's store of unacknowledged
            # QoS>0 messages is full; keep the message at the head and wait for the next chance
            with self._cond:
                if len(self._queue) < self.config.queue_size:
                    self._queue.appendleft(item)
                else:
                    self.dropped += 1
                if rc == MQTT_ERR_QUEUE_SIZE:
                    self._cond.wait(0.05)

    # paho's callbacks (CallbackAPIVersion.VERSION2), run on paho's network thread

    def _attempt_failed(self, reason: str) -> None:
        """Count a failed connection attempt; warn on the first of an outage, then every ``remind_s``."""
        self.connect_failures += 1
        now = time.monotonic()
        if self._down_since is None:
            self._down_since, self._down_dropped = now, self.dropped
        cfg = self.config
        if self._warned_at is None:
            log.warning("mqtt: unable to connect to %s:%d: %s; retrying (back-off up to %d s), "
                        "keeping the newest %d messages", cfg.host, cfg.port, reason, cfg.reconnect_max_s,
                        cfg.queue_size)
        elif now - self._warned_at >= self.remind_s:
            log.warning("mqtt: still unable to connect to %s:%d after %.0f s: %s; %d messages dropped so far",
                        cfg.host, cfg.port, now - self._down_since, reason, self.dropped - self._down_dropped)
        else:
            return
        self._warned_at = now

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        # paho calls this from its ``except OSError:`` around the attempt: the exception is the reason
        self._attempt_failed(_reason(sys.exc_info()[1]))

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        cfg = self.config
        if reason_code.is_failure:
            self._refused = True
            self._attempt_failed(f"refused by the broker: {reason_code}")
            return
        self._connects += 1
        self.reconnects = max(0, self._connects - 1)
        if (self._warned_at is not None or self._connects > 1) and self._down_since is not None:
            log.info("mqtt %s to %s:%d after %.0f s; %d messages dropped meanwhile",
                     "reconnected" if self._connects > 1 else "connected", cfg.host, cfg.port,
                     time.monotonic() - self._down_since, self.dropped - self._down_dropped)
        else:
            log.info("mqtt connected to %s:%d", cfg.host, cfg.port)
        self._down_since = self._warned_at = None
        # status messages use QoS 0 so that a full store of unacknowledged detections cannot
        # refuse them; the retained copy on the broker is what subscribers read
        client.publish(self.topic_status, "online", qos=0, retain=True)
        if self._source is not None:
            client.publish(self.topic_source, self._source, qos=0, retain=True)
        if cfg.home_assistant:
            frame = {label: topic for (zone, label), topic in self.topic_counts.items() if zone is None}
            prefix = cfg.discovery_prefix
            found = discovery_messages(prefix, self.device, self.model, self.topic_status, frame)
            for topic, config in found:
                client.publish(topic, json.dumps(config, separators=(",", ":")), qos=0, retain=True)
        for key, topic in self.topic_counts.items():  # the broker's retained counts may be old
            client.publish(topic, str(self._counts[key]), qos=0, retain=True)
        with self._cond:
            self._connected = True
            self._cond.notify_all()

    def _on_disconnect(self, _client: Any, _data: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
        refused, self._refused = self._refused, False
        if self._abort:  # our own disconnect in stop()
            return
        if was:
            self._down_since, self._down_dropped = time.monotonic(), self.dropped
            log.warning("mqtt disconnected from %s:%d (%s); reconnecting", self.config.host, self.config.port,
                        reason_code)
        elif not refused:  # the connection closed before the broker answered
            self._attempt_failed(f"closed before the broker answered ({reason_code})")
