"""Small hooks of the training loop: early stopping, the progress bar, and user callbacks.

The loop in :mod:`edgecnn.train.fit` is a plain Python loop over epochs (not ``model.fit``),
so these are plain objects: :class:`EarlyStopping` decides when to stop and which epoch is
the best, :class:`ProgressBar` draws a rich bar per epoch on a terminal (elsewhere it logs a
line a minute within long epochs), and any object with
an ``on_epoch_end(record)`` method (:class:`Callback`) sees each epoch's history record
after the checkpoint of that epoch is written. :meth:`ProgressBar.print_line` writes a line
above the bar from any thread (the training loop's stderr filter sends C++ lines there).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any, ClassVar, Protocol, runtime_checkable

logger = logging.getLogger(__name__)


@runtime_checkable
class Callback(Protocol):
    """Called after every epoch, once the epoch's checkpoint is on disk."""

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """``record`` is the epoch's history entry (see :mod:`edgecnn.train.history`)."""
        ...


class EarlyStopping:
    """Track the best validation value and stop after ``patience`` epochs without improvement.

    Args:
        patience: epochs without a better value before stopping; 0 never stops early.
        min_delta: an improvement must exceed this.

    Example:
        >>> stop = EarlyStopping(patience=2)
        >>> [stop.update(e, v) for e, v in [(1, 0.5), (2, 0.4), (3, 0.45)]]
        [True, False, False]
        >>> stop.should_stop(3), stop.should_stop(4)
        (False, True)
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record the validation ``value`` of ``epoch``; True when it is a new best."""
        if self.best is None or value > self.best + self.min_delta:
            self.best = value
            self.best_epoch = epoch
            return True
        return False

    def should_stop(self, epoch: int) -> bool:
        """True when ``patience`` epochs have passed since the best one."""
        return self.patience > 0 and self.best is not None and epoch - self.best_epoch >= self.patience

    def state(self) -> dict[str, Any]:
        """JSON-ready state, for resuming."""
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""
        self.best = state.get("best")
        self.best_epoch = int(state.get("best_epoch", 0))


class ProgressBar:
    """A rich progress bar per epoch on stderr, drawn only when stderr is a terminal.

    Without the bar (CI logs, ``nohup``, a pipe) an epoch that runs longer than ``log_every``
    seconds logs ``epoch 2/30: step 40/89, loss 1.2345`` every ``log_every`` seconds, so a log
    shows that a long epoch is moving.

    Args:
        epochs: total epochs (for the description).
        enabled: None draws only on a terminal; True or False forces it.
        log_every: seconds between step lines when no bar is drawn. Default 60.
    """

    #: The bar being drawn (the innermost), for :meth:`print_line`; changed under ``_lock``.
    _drawn: ClassVar[ProgressBar | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, epochs: int, enabled: bool | None = None, log_every: float = 60.0) -> None:
        self.epochs = epochs
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.log_every = log_every
        self._progress: Any = None
        self._task: Any = None
        self._epoch = 0
        self._steps = 0
        self._last_log = 0.0
        self._outer: ProgressBar | None = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            with ProgressBar._lock:
                self._outer, ProgressBar._drawn = ProgressBar._drawn, self
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            with ProgressBar._lock:  # not while print_line draws: rich would redraw the bar after its end
                self._progress.__exit__(kind, exc, tb)
                self._progress = None
                ProgressBar._drawn = self._outer

    @classmethod
    def print_line(cls, text: str) -> None:
        """Write ``text`` as a line of its own: above the bar being drawn, else to stderr.

        Safe from any thread, also while a bar starts or ends.
        """
        with cls._lock:
            if cls._drawn is not None and cls._drawn._progress is not None:
                cls._drawn._progress.console.print(
                    text, markup=False, highlight=False, emoji=False, soft_wrap=True
                )
                return
        sys.stderr.write(f"{text}\n")

    def start_epoch(self, epoch: int, steps: int, info: str = "") -> None:
        """Begin the bar of ``epoch`` (1-based) with ``steps`` steps."""
        self._epoch, self._steps, self._last_log = epoch, steps, time.monotonic()
        if self._progress is not None:
            self._task = self._progress.add_task(f"epoch {epoch}/{self.epochs}", total=steps, info=info)

    def step(self, done: int, info: str = "") -> None:
        """Move the current bar to ``done`` steps, with ``info`` (e.g. the running loss)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, info=info)
        elif not self.enabled and time.monotonic() - self._last_log >= self.log_every:
            self._last_log = time.monotonic()
            logger.info("epoch %d/%d: step %d/%d, %s", self._epoch, self.epochs, done, self._steps, info)

    def end_epoch(self, info: str) -> None:
        """Finish the current bar with a summary (validation metrics)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, info=info)
            self._task = None
