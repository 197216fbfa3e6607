"""One log line when an output starts failing and one when it works again, whatever the name."""

from __future__ import annotations

import logging

import pytest

from edgecnn.sinks._outage import Outage


def test_an_outage_is_logged_once_with_its_reason_and_its_cost(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.outage")
    outage = Outage(log, "/data/50%d.jsonl", "cannot write %s: %s", "writing %s again; %d lost")
    with caplog.at_level(logging.INFO, logger=log.name):
        outage.worked()  # no outage: nothing to say
        outage.failed("No space left on device", 3)
        outage.failed("No space left on device", 2)
        assert outage.lost == 5
        outage.worked()
        outage.worked()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "cannot write /data/50%d.jsonl: No space left on device"),  # a % in a name is text
        ("WARNING", "writing /data/50%d.jsonl again; 5 lost"),
    ]
    assert outage.lost is None
