"""A run directory's start: refuse an occupied one, or replace the run in it without losing it early.

``edgecnn train --out RUN --exist-ok`` replaces the run already in ``RUN``. Deleting it at
the start would lose a finished model to a Ctrl-C one second into the new run, and leave the
folder a mix of both. Instead :meth:`RunDir.prepare` moves the old run's files into
``RUN/.previous-run/``; :meth:`RunDir.commit` deletes them once the new run has saved its
first epoch, and :meth:`RunDir.rollback` (the new run stopped before that: Ctrl-C, an error)
deletes what the new run wrote and puts the old files back. A process killed outright runs
neither: :meth:`RunDir.recover`, at the start of the next ``train`` in that folder, puts the
old run back first.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from edgecnn.errors import UserError

logger = logging.getLogger(__name__)

PREVIOUS_DIR = ".previous-run"


class RunDir:
    """The run directory ``path``, whose runs write the files named ``outputs``.

    Args:
        path: the run directory.
        outputs: every file name a run writes there.
        markers: the names that make a folder hold a run (refused unless ``exist_ok``).
    """

    def __init__(self, path: Path, outputs: Sequence[str], markers: Sequence[str]) -> None:
        self.path = path
        self.outputs = tuple(outputs)
        self.markers = tuple(markers)
        self.previous: Path | None = None  # the set-aside run, until commit or rollback

    def prepare(self, exist_ok: bool) -> None:
        """Create the folder; with a run in it, refuse (``exist_ok`` False) or set it aside.

        Raises:
            UserError: the path is a file, or holds a run and ``exist_ok`` is False.
        """
        run = self.path
        if run.exists() and not run.is_dir():
            raise UserError(f"{run}: --out must be a directory")
        existing = [name for name in self.markers if (run / name).exists()]
        if existing and not exist_ok:
            raise UserError(
                f"{run} already holds a run ({existing[0]}); pass --resume to continue it, or --exist-ok"
            )
        run.mkdir(parents=True, exist_ok=True)
        found = [name for name in self.outputs if (run / name).exists()]
        if not found:
            return
        previous = run / PREVIOUS_DIR
        shutil.rmtree(previous, ignore_errors=True)  # left by a process that was killed outright
        previous.mkdir()
        for name in found:
            os.replace(run / name, previous / name)
        self.previous = previous
        logger.info("the run in %s is kept in %s until the new run saves its first epoch", run, previous)

    def recover(self) -> None:
        """Put back a run a killed replacement left set aside (``kill -9`` before its first
        epoch: neither commit nor rollback ran). Call before anything else touches the folder."""
        previous = self.path / PREVIOUS_DIR
        if self.path.is_dir() and previous.is_dir():
            logger.warning("%s: a replacement was stopped before its first epoch; its run is back", previous)
            self.previous = previous
            self.rollback()

    def commit(self) -> None:
        """The new run has saved an epoch: delete the old one (no-op when there is none)."""
        if self.previous is not None:
            shutil.rmtree(self.previous, ignore_errors=True)
            self.previous = None

    def rollback(self) -> None:
        """The new run stopped before its first epoch was saved: put the old run back."""
        if self.previous is None:
            return
        for name in self.outputs:
            (self.path / name).unlink(missing_ok=True)
        for item in self.previous.iterdir():
            os.replace(item, self.path / item.name)
        self.previous.rmdir()
        self.previous = None
        logger.info("the previous run in %s is back", self.path)
