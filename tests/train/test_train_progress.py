"""Progress of ``edgecnn train`` where no bar is drawn (CI logs, nohup): a line a minute."""

from __future__ import annotations

import logging

import pytest

from edgecnn.train import callbacks
from edgecnn.train.callbacks import ProgressBar


def test_without_a_terminal_a_long_epoch_logs_a_step_line_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, a log showed nothing between two epoch lines: at 15 images/s a 2000-image epoch
    # is two silent minutes, and the first one also waits for the data to be cached.
    clock = [100.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
    caplog.set_level(logging.INFO, logger="edgecnn.train.callbacks")
    with ProgressBar(30, enabled=False) as bar:
        bar.start_epoch(2, 89)
        for step, seconds in ((1, 10), (2, 59), (3, 60), (4, 90), (5, 121)):
            clock[0] = 100.0 + seconds
            bar.step(step, f"loss {2.0 / step:.4f}")
        bar.end_epoch("loss 0.4  acc 0.9")
    assert caplog.messages == ["epoch 2/30: step 3/89, loss 0.6667", "epoch 2/30: step 5/89, loss 0.4000"]


def test_the_terminal_bar_logs_no_step_lines(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
    caplog.set_level(logging.INFO, logger="edgecnn.train.callbacks")
    bar = ProgressBar(3, enabled=True)
    bar.start_epoch(1, 10)  # outside `with`: no rich bar is drawn, and none is logged either
    clock[0] = 1000.0
    bar.step(5, "loss 1.0")
    assert caplog.messages == []
