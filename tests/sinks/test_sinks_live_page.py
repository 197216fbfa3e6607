"""The live page in headless Chromium: the stream image loads and the detections list updates itself."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgecnn.daemon.state import DaemonStats
from edgecnn.sinks.base import Detection
from edgecnn.sinks.draw import PALETTE
from edgecnn.sinks.http import HttpConfig, HttpSink

TOKEN = "live-page-token-0123456789"
FIRST = (Detection("person", 0, 0.93, (120.0, 90.0, 300.0, 420.0)), Detection("bicycle", 4, 0.71,
                                                                               (330.0, 250.0, 560.0, 430.0)))
SECOND = (Detection("dog", 1, 0.88, (360.0, 210.0, 600.0, 440.0)),
          Detection("person", 0, 0.64, (130.0, 80.0, 290.0, 415.0)))
LEAD_COPY = Path("/tmp/edgecnn_live_page.png")
START = "2026-12-01T10:00:00.000Z"
EVENTS = (  # what the daemon's tracking sends: a person walks into the porch and stops, a car leaves
    {"type": "new", "id": 7, "label": "person", "score": 0.9, "box": [120, 90, 300, 420], "start": START,
     "zones": ["driveway"], "stationary": False},
    {"type": "update", "id": 7, "label": "person", "score": 0.92, "box": [130, 90, 310, 420], "start": START,
     "zones": ["porch"], "entered": ["porch"], "left": ["driveway"], "stationary": False},
    {"type": "update", "id": 7, "label": "person", "score": 0.91, "box": [131, 90, 311, 420], "start": START,
     "zones": ["porch"], "entered": [], "left": [], "stationary": True},
    {"type": "end", "id": 3, "label": "car", "score": 0.8, "box": [330, 250, 560, 430], "start": START,
     "end": "2026-12-01T10:00:04.200Z", "duration_s": 4.2, "frames": 42, "zones": [], "stationary": False},
)


def scene(width: int = 640, height: int = 480) -> np.ndarray:
    """A synthetic frame that looks like something: a gradient, a floor, a few shapes."""
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (90 + 80 * y + 20 * x).astype(np.uint8)
    image[..., 1] = (80 + 60 * y).astype(np.uint8)
    image[..., 2] = (60 + 40 * x).astype(np.uint8)
    image[330:] = (70, 85, 95)
    cv2.rectangle(image, (140, 110), (280, 410), (60, 70, 150), -1)
    cv2.circle(image, (210, 120), 34, (120, 150, 200), -1)
    cv2.rectangle(image, (380, 230), (580, 430), (40, 90, 120), -1)
    return image


def chromium(exe: str, url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` with a fresh profile; 5 s of virtual time."""
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=5000", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)


def test_page_palette_matches_draw() -> None:
    page = (Path(__file__).parents[2] / "edgecnn" / "sinks" / "http_page.html").read_text()
    rgb = [tuple(map(int, m)) for m in re.findall(r'"rgb\((\d+),(\d+),(\d+)\)"', page)]
    assert rgb == [(r, g, b) for b, g, r in PALETTE]
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not load external assets"


@pytest.mark.slow
def test_live_page_in_headless_chromium(tmp_path: Path, chromium_exe: str, make_result) -> None:
    stats = DaemonStats("kitchen-pi")
    stats.set_names(model="tiny-yolo", source="/dev/video0")
    stats.set_ready()
    stats.set_source_state("online")
    sink = HttpSink(HttpConfig(type="http", port=0, auth_token=TOKEN, stream_fps=10), device="kitchen-pi",
                    state=stats)
    served: list[tuple[str, ...]] = []  # the labels each /latest.json answer carried
    current = [FIRST]
    image = scene()
    original = sink.latest_record

    def recording() -> dict[str, Any]:
        record = original()
        served.append(tuple(d["label"] for d in (record["result"] or {}).get("detections", [])))
        if current[0] is FIRST and served.count(("person", "bicycle")) == 2:
            current[0] = SECOND  # the page has shown FIRST: from now on the loop sees a dog
            stats.record(make_result(stats.frames + 1, SECOND, image=image))
        return record

    sink.latest_record = recording  # type: ignore[method-assign]
    stop = threading.Event()

    def loop() -> None:  # the daemon's loop
        while not stop.is_set():
            stats.record(make_result(stats.frames + 1, current[0], image=image))
            time.sleep(0.05)

    emitter = threading.Thread(target=loop, daemon=True)
    sink.start()
    for event in EVENTS:  # the daemon hands every result to its sinks; these carry events
        sink.emit(dataclasses.replace(make_result(1, FIRST), events=(event,)))
    emitter.start()
    try:
        url = f"{sink.url}/?token={TOKEN}"
        dom = chromium(chromium_exe, url, tmp_path, "--dump-dom").stdout
        shot = tmp_path / "live_page.png"
        chromium(chromium_exe, url, tmp_path, f"--screenshot={shot}", "--window-size=1280,800",
                 "--hide-scrollbars")
    finally:
        stop.set()
        emitter.join()
        sink.stop()

    body = re.search(r"<body([^>]*)>", dom)
    # the page sets data-stream="live" once the <img> has MJPEG frames (naturalWidth > 0)
    assert body and 'data-stream="live"' in body.group(1), body
    assert 'data-signal="ok"' in body.group(1)
    # the page showed FIRST, then updated itself to SECOND without a reload
    assert ("person", "bicycle") in served and served[-1] == ("dog", "person")
    assert re.findall(r'<li data-label="([^"]+)"', dom) == ["dog", "person"]
    assert 'id="device">kitchen-pi<' in dom and ">online<" in dom
    # the tracked objects panel: newest event first, each described in words
    shown = re.findall(r'<li data-event="(\w+)" data-id="(\d+)">(.*?)</li>', dom)
    assert [(kind, int(i)) for kind, i, _ in shown] == [("end", 3), ("update", 7), ("update", 7), ("new", 7)]
    texts = [re.sub(r"<[^>]+>", " ", html) for _, _, html in shown]
    assert "#3 car" in texts[0] and "gone after 4.2 s" in texts[0]
    assert "stopped" in texts[1] and "entered" not in texts[1]
    assert "entered porch · left driveway" in texts[2] and "appeared in driveway" in texts[3]
    assert re.search(r'<div class="card" id="events-card">', dom)  # no longer hidden
    png = cv2.imread(str(shot))
    assert png is not None and png.shape[:2] == (800, 1280)
    assert png.std() > 10  # not a blank page
    shutil.copyfile(shot, LEAD_COPY)
