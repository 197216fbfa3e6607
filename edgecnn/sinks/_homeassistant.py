"""Per-label object counts over MQTT, and Home Assistant's MQTT discovery for them.

Frigate publishes the number of objects of each kind a camera sees to
``frigate/<camera>/<object>``; the MQTT sink does the same, retained, to
``<prefix>/<device>/<label>``. With discovery on, Home Assistant is told about them through
retained messages under its discovery prefix (``homeassistant/<component>/<node>/<object>/
config``): per label a ``sensor`` with the count and a ``binary_sensor`` (occupancy: on
while the count is above 0), both unavailable while the device's ``status`` is ``offline``,
grouped under one device. The functions here only build topics and payloads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def topic_id(text: str) -> str:
    """``text`` as a topic level or Home Assistant id: letters, digits, ``_`` and ``-``."""
    return _UNSAFE.sub("_", text.strip()) or "_"


def label_topics(base: str, labels: Sequence[str]) -> dict[str, str]:
    """The count topic of each label, ``<base>/<label>``; labels that would share a topic
    (``traffic light`` and ``traffic_light``) get their class id appended."""
    ids = [topic_id(label) for label in labels]
    taken = {i for i in ids if ids.count(i) > 1} | {"detections", "status", "source", "events"}
    return {
        label: f"{base}/{i}_{k}" if i in taken else f"{base}/{i}"
        for k, (label, i) in enumerate(zip(labels, ids, strict=True))
    }


def count_labels(labels: Sequence[str], detected: Sequence[str]) -> dict[str, int]:
    """How many of ``detected`` (one label per object) each of ``labels`` has."""
    counts = dict.fromkeys(labels, 0)
    for label in detected:
        if label in counts:
            counts[label] += 1
    return counts


def discovery_messages(
    prefix: str, device: str, model: str, status_topic: str, topics: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """``(topic, payload)`` of the retained discovery configs: a count sensor and an
    occupancy binary sensor per label."""
    node = f"edgecnn_{topic_id(device)}"
    about = {
        "identifiers": [node],
        "name": device,
        "manufacturer": "edgecnn",
        **({"model": model} if model else {}),
    }
    common = {"availability_topic": status_topic, "device": about}
    out = []
    for label, state_topic in topics.items():
        obj = state_topic.rsplit("/", 1)[1]
        out.append(
            (
                f"{prefix}/sensor/{node}/{obj}_count/config",
                {
                    "name": f"{label} count",
                    "unique_id": f"{node}_{obj}_count",
                    "state_topic": state_topic,
                    "state_class": "measurement",
                    "icon": "mdi:counter",
                    **common,
                },
            )
        )
        out.append(
            (
                f"{prefix}/binary_sensor/{node}/{obj}/config",
                {
                    "name": f"{label} detected",
                    "unique_id": f"{node}_{obj}_detected",
                    "state_topic": state_topic,
                    "value_template": "{{ 'ON' if value | int > 0 else 'OFF' }}",
                    "device_class": "occupancy",
                    **common,
                },
            )
        )
    return out
