"""The MQTT sink against a real mosquitto broker on a loopback port."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time

import pytest
from pydantic import ValidationError

from edgecnn.errors import ConfigError
from edgecnn.sinks import build_sink
from edgecnn.sinks._homeassistant import count_labels, label_topics
from edgecnn.sinks.base import Detection, SinkContext
from edgecnn.sinks.mqtt import MqttConfig, MqttSink

PERSON = Detection("person", 0, 0.91, (10.0, 20.0, 110.0, 220.0))
CAR = Detection("car", 2, 0.55, (50.0, 60.0, 90.0, 80.0))


def test_mqtt_config_defaults_and_bounds() -> None:
    cfg = MqttConfig(type="mqtt")
    assert (cfg.host, cfg.port, cfg.qos, cfg.topic_prefix) == ("127.0.0.1", 1883, 0, "edgecnn")
    assert (cfg.queue_size, cfg.reconnect_min_s, cfg.reconnect_max_s, cfg.skip_empty) == (256, 1, 30, False)
    for bad in ({"qos": 3}, {"port": 0}, {"queue_size": 0}, {"bogus": 1}, {"topic_prefix": "a/#"},
                {"reconnect_min_s": 10, "reconnect_max_s": 5}, {"password": "x"}, {"ca_file": "/ca.pem"},
                {"tls": True, "cert_file": "/c.pem"}):
        with pytest.raises(ValidationError):
            MqttConfig(type="mqtt", **bad)
    secret = MqttConfig(type="mqtt", username="cam", password="hunter2-secret")
    assert "hunter2-secret" not in repr(secret) and "hunter2-secret" not in str(secret.model_dump())
    with pytest.raises(ConfigError):
        MqttSink(MqttConfig(type="mqtt"), device="a/b")


def test_mqtt_emit_never_blocks_and_counts_drops_without_broker(free_port, make_result) -> None:
    sink = MqttSink(MqttConfig(type="mqtt", port=free_port(), queue_size=10), device="cam")
    sink.start()
    try:
        for i in range(1, 101):
            sink.emit(make_result(i, (PERSON,)))
        assert not sink.connected
        assert sink.dropped == 90 and sink.published == 0
    finally:
        sink.stop(timeout=0.5)
    assert sink.dropped == 100  # what was still queued at stop is dropped too


def mqtt_messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "edgecnn.sinks.mqtt" and r.levelno == level]


def test_mqtt_unreachable_broker_warns_once_then_logs_the_connect(broker, make_result, wait_until,
                                                                  caplog) -> None:
    caplog.set_level(logging.INFO, logger="edgecnn.sinks.mqtt")
    broker.stop()  # nothing listens on its port now: connection refused
    config = MqttConfig(type="mqtt", port=broker.port, username="cam", password="hunter2-secret",
                        queue_size=5, reconnect_max_s=1)
    sink = MqttSink(config, device="cam3")
    with sink:
        assert wait_until(lambda: sink.connect_failures >= 3, timeout=20)
        for i in range(1, 21):
            sink.emit(make_result(i, (PERSON,)))
        warnings = mqtt_messages(caplog, logging.WARNING)
        assert len(warnings) == 1, warnings  # not one per attempt
        assert f"unable to connect to 127.0.0.1:{broker.port}: Connection refused" in warnings[0]
        broker.start()
        assert wait_until(lambda: sink.connected, timeout=15)
        assert wait_until(lambda: sink.published == 5)
    infos = mqtt_messages(caplog, logging.INFO)
    assert any(m.startswith(f"mqtt connected to 127.0.0.1:{broker.port} after ")
               and m.endswith("; 15 messages dropped meanwhile") for m in infos), infos
    assert "hunter2-secret" not in caplog.text


def test_mqtt_unresolvable_host_is_named_and_reminded(make_result, wait_until, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edgecnn.sinks.mqtt")
    sink = MqttSink(MqttConfig(type="mqtt", host="mosquitto.invalid", reconnect_max_s=1), device="cam4")
    sink.remind_s = 0.0  # a reminder at every further attempt instead of every 5 minutes
    with sink:
        assert wait_until(lambda: len(mqtt_messages(caplog, logging.WARNING)) >= 2, timeout=30)
    first, second = mqtt_messages(caplog, logging.WARNING)[:2]
    assert first.startswith("mqtt: unable to connect to mosquitto.invalid:1883: host name does not resolve")
    assert second.startswith("mqtt: still unable to connect to mosquitto.invalid:1883 after ")
    assert not sink.connected and sink.published == 0


def test_mqtt_publishes_records_and_retained_status(broker, mqtt_listener, make_result, wait_until) -> None:
    listener = mqtt_listener(broker.port, "edgecnn/cam1/#")
    sink = MqttSink(MqttConfig(type="mqtt", port=broker.port, qos=1), device="cam1")
    sink.start()
    try:
        assert wait_until(lambda: sink.connected)
        sink.status("online", "/dev/video0")
        results = [make_result(i, (PERSON, CAR) if i % 2 else ()) for i in range(1, 6)]
        for r in results:
            sink.emit(r)
        assert wait_until(lambda: len(listener.records("edgecnn/cam1/detections")) == 5)
        assert listener.records("edgecnn/cam1/detections") == [r.to_record() for r in results]
        assert wait_until(lambda: listener.records("edgecnn/cam1/source"))
        assert listener.records("edgecnn/cam1/source")[-1] == {"state": "online", "detail": "/dev/video0"}
        # a client arriving later gets the retained status
        late = mqtt_listener(broker.port, "edgecnn/cam1/status", client_id="late")
        assert wait_until(lambda: late.messages)
        assert late.messages[0] == ("edgecnn/cam1/status", b"online", True)
    finally:
        sink.stop()
    assert wait_until(lambda: listener.payloads("edgecnn/cam1/status")[-1:] == [b"offline"])


CHILD = textwrap.dedent("""
    import sys, time
    from edgecnn.sinks.mqtt import MqttConfig, MqttSink
    sink = MqttSink(MqttConfig(type="mqtt", port=int(sys.argv[1]), keepalive_s=5), device="doomed")
    sink.start()
    while not sink.connected:
        time.sleep(0.01)
    print("connected", flush=True)
    time.sleep(60)
""")


def test_mqtt_last_will_marks_a_killed_publisher_offline(broker, mqtt_listener, wait_until) -> None:
    listener = mqtt_listener(broker.port, "edgecnn/doomed/status")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(broker.port)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"connected\n"
        assert wait_until(lambda: listener.payloads("edgecnn/doomed/status") == [b"online"])
        os.kill(child.pid, signal.SIGKILL)  # no clean disconnect: the broker sends the will
        child.wait(10)
        assert wait_until(lambda: listener.payloads("edgecnn/doomed/status") == [b"online", b"offline"])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    late = mqtt_listener(broker.port, "edgecnn/doomed/status", client_id="late")
    assert wait_until(lambda: late.messages)
    assert late.messages[0] == ("edgecnn/doomed/status", b"offline", True)


def _run_loop(sink: MqttSink, make_result, first: int, n: int) -> float:
    """A stand-in for the daemon's loop: ~2 ms of work per frame, then emit. Returns the median
    seconds per iteration (robust to a few pauses caused by other processes)."""
    times = []
    for i in range(first, first + n):
        start = time.perf_counter()
        time.sleep(0.002)
        sink.emit(make_result(i, (PERSON,)))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.mark.slow
def test_mqtt_survives_a_broker_restart(broker, mqtt_listener, make_result, wait_until, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edgecnn.sinks.mqtt")
    topic = "edgecnn/cam2/detections"
    listener = mqtt_listener(broker.port, topic)  # persistent session: QoS 1 survives the restart
    config = MqttConfig(type="mqtt", port=broker.port, qos=1, queue_size=50, reconnect_max_s=1)
    sink = MqttSink(config, device="cam2")
    sink.start()
    try:
        assert wait_until(lambda: sink.connected)
        up = _run_loop(sink, make_result, 1, 200)
        assert wait_until(lambda: len(listener.payloads(topic)) >= 200)
        assert sink.dropped == 0

        broker.stop()
        assert wait_until(lambda: not sink.connected)
        down = _run_loop(sink, make_result, 201, 200)
        # the loop keeps its rate with the broker gone: emit() neither blocks nor waits
        assert down < 1.5 * up, (down, up)
        assert sink.dropped == 150  # the queue keeps the newest 50

        broker.start()
        assert wait_until(lambda: sink.connected and sink.reconnects == 1, timeout=15)
        infos = mqtt_messages(caplog, logging.INFO)
        assert any(m.startswith(f"mqtt reconnected to 127.0.0.1:{broker.port} after ")
                   and m.endswith("; 150 messages dropped meanwhile") for m in infos), infos
        got = lambda: {r["frame"] for r in listener.records(topic)}  # noqa: E731
        assert wait_until(lambda: set(range(351, 401)) <= got(), timeout=15)
        assert not got() & set(range(201, 351)), "dropped messages were delivered"
        for i in range(401, 406):
            sink.emit(make_result(i, (PERSON,)))
        assert wait_until(lambda: set(range(401, 406)) <= got())
    finally:
        sink.stop()


@pytest.mark.slow
def test_mqtt_tls_and_password_never_logged(secure_broker, mqtt_listener, make_result, wait_until,
                                            caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sec = secure_broker
    auth = {"ca_file": sec.ca_file, "username": sec.username}
    listener = mqtt_listener(sec.broker.port, "edgecnn/secure/#", password=sec.password, **auth)
    config = MqttConfig(type="mqtt", port=sec.broker.port, tls=True, password=sec.password, **auth)
    sink = MqttSink(config, device="secure")
    with sink:
        assert wait_until(lambda: sink.connected)
        sink.emit(make_result(1, (PERSON,)))
        assert wait_until(lambda: listener.records("edgecnn/secure/detections"))
    assert listener.records("edgecnn/secure/detections")[0]["detections"][0]["label"] == "person"

    wrong = MqttConfig(type="mqtt", port=sec.broker.port, tls=True, password="not-" + sec.password,
                       reconnect_max_s=1, **auth)
    refused = MqttSink(wrong, device="secure2")
    with refused:
        assert wait_until(lambda: "refused" in caplog.text)
        assert not refused.connected
    assert sec.password not in caplog.text and sec.password not in repr(config)


def test_label_topics_are_safe_topic_levels_and_never_shared() -> None:
    labels = ["person", "traffic light", "traffic_light", "a/b+#", "status", "events"]
    topics = label_topics("edgecnn/cam", labels)
    assert topics == {
        "person": "edgecnn/cam/person",
        "traffic light": "edgecnn/cam/traffic_light_1",
        "traffic_light": "edgecnn/cam/traffic_light_2",
        "a/b+#": "edgecnn/cam/a_b__",
        "status": "edgecnn/cam/status_4",  # not the availability topic
        "events": "edgecnn/cam/events_5",  # nor the tracking events' topic
    }
    assert count_labels(["person", "car"], ["car", "person", "car", "dog"]) == {"person": 1, "car": 2}


def test_counts_go_retained_per_label_and_home_assistant_discovers_them(
    broker, mqtt_listener, make_result, wait_until
) -> None:
    """Frigate's per-object topics, and Home Assistant's MQTT discovery, against a real broker."""
    config = MqttConfig(type="mqtt", port=broker.port, qos=1, home_assistant=True)
    labels = ("person", "car")
    sink = MqttSink(config, device="front door", labels=labels, task="detect", model="tiny", zones=("path",))
    listener = mqtt_listener(broker.port, "#")
    sink.start()
    on_path = dataclasses.replace(PERSON, zones=("path",))
    new = {"type": "new", "id": 1, "label": "person", "score": 0.9, "box": [1, 2, 3, 4], "zones": []}
    end = {**new, "type": "end", "end": "t2", "duration_s": 0.2, "frames": 3}
    try:
        assert wait_until(lambda: sink.connected)
        frames = [(PERSON,), (on_path, PERSON, CAR), (on_path, PERSON, CAR), (), (CAR,)]
        for i, detections in enumerate(frames, start=1):
            events = {2: (new,), 4: (end,)}.get(i, ())
            sink.emit(dataclasses.replace(make_result(i, detections), events=events))
        assert wait_until(lambda: len(listener.records("edgecnn/front door/detections")) == 5)
        assert wait_until(lambda: listener.payloads("edgecnn/front door/car")[-1:] == [b"1"])
    finally:
        sink.stop()
    # Published at connect (0, 0), then only on a change; the third frame repeats the second.
    assert listener.payloads("edgecnn/front door/person") == [b"0", b"1", b"2", b"0"]
    assert listener.payloads("edgecnn/front door/car") == [b"0", b"1", b"0", b"1"]
    assert listener.payloads("edgecnn/front door/path/person") == [b"0", b"1", b"0"]  # per zone
    assert listener.payloads("edgecnn/front door/path/car") == [b"0"]
    # tracking events, one message each, not retained; the frame records carry them too
    assert [json.loads(p) for p in listener.payloads("edgecnn/front door/events")] == [new, end]
    assert not any(r for t, _, r in listener.messages if t.endswith("/events"))
    assert listener.records("edgecnn/front door/detections")[3]["events"] == [end]
    configs = {t: json.loads(p) for t, p, _ in listener.messages if t.startswith("homeassistant/")}
    assert set(configs) == {
        "homeassistant/sensor/edgecnn_front_door/person_count/config",
        "homeassistant/binary_sensor/edgecnn_front_door/person/config",
        "homeassistant/sensor/edgecnn_front_door/car_count/config",
        "homeassistant/binary_sensor/edgecnn_front_door/car/config",
    }
    occupancy = configs["homeassistant/binary_sensor/edgecnn_front_door/person/config"]
    assert occupancy["state_topic"] == "edgecnn/front door/person"
    assert occupancy["availability_topic"] == "edgecnn/front door/status"
    device = {"identifiers": ["edgecnn_front_door"], "name": "front door", "manufacturer": "edgecnn"}
    assert occupancy["device"] == {**device, "model": "tiny"}
    assert occupancy["device_class"] == "occupancy" and "unique_id" in occupancy
    # A client arriving later (Home Assistant after a restart) gets the current counts and configs.
    late = mqtt_listener(broker.port, "edgecnn/front door/+", client_id="late")
    assert wait_until(lambda: {t for t, _, r in late.messages if r} >= {"edgecnn/front door/car"})
    retained = {t: p for t, p, r in late.messages if r}
    assert retained["edgecnn/front door/person"] == b"0" and retained["edgecnn/front door/car"] == b"1"


def test_the_final_result_at_stop_goes_to_the_events_topic_before_the_disconnect(
    broker, mqtt_listener, make_result, wait_until
) -> None:
    """The daemon stops: its last result carries the end events of the objects still
    followed; they are published before ``offline``, and the result is no frame: no record,
    and the counts stay."""
    listener = mqtt_listener(broker.port, "edgecnn/cam/#")
    sink = MqttSink(MqttConfig(type="mqtt", port=broker.port, qos=1), device="cam", labels=("person", "car"))
    sink.start()
    end = {"type": "end", "id": 1, "label": "person", "end": "2026-11-30T12:00:00.100Z", "zones": []}
    final = dataclasses.replace(make_result(1), latency_ms={}, events=(end, {**end, "id": 2}), final=True)
    try:
        assert wait_until(lambda: sink.connected)
        sink.emit(make_result(1, (PERSON,)))
        sink.emit(final)
    finally:
        sink.stop()  # at once, as the daemon does after its final result
    assert wait_until(lambda: listener.payloads("edgecnn/cam/status")[-1:] == [b"offline"])
    assert listener.records("edgecnn/cam/events") == [end, {**end, "id": 2}]
    topics = [t for t, _, _ in listener.messages]
    assert topics.index("edgecnn/cam/events") < len(topics) - 1 - topics[::-1].index("edgecnn/cam/status")
    assert [r["frame"] for r in listener.records("edgecnn/cam/detections")] == [1]
    assert listener.payloads("edgecnn/cam/person") == [b"0", b"1"]  # not set back to 0 by the stop


def test_the_daemon_context_gives_labels_and_classifiers_publish_no_counts() -> None:
    context = SinkContext(device="d", model="m", labels=("person", "car"), task="detect", zones=("yard",))
    sink = build_sink(MqttConfig(type="mqtt"), context)
    assert isinstance(sink, MqttSink) and sink.model == "m"
    assert sink.topic_counts == {
        (None, "person"): "edgecnn/d/person",
        (None, "car"): "edgecnn/d/car",
        ("yard", "person"): "edgecnn/d/yard/person",
        ("yard", "car"): "edgecnn/d/yard/car",
    }
    sink = build_sink(MqttConfig(type="mqtt"), dataclasses.replace(context, task="classify"))
    assert isinstance(sink, MqttSink) and sink.topic_counts == {} and sink.labels == ()
    assert MqttSink(MqttConfig(type="mqtt", counts=False), device="d", labels=("cat",)).topic_counts == {}
    with pytest.raises(ValidationError, match="home_assistant needs counts"):
        MqttConfig(type="mqtt", home_assistant=True, counts=False)
