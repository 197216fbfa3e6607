"""Log an output's failures once per outage instead of once per write.

A sink whose writes fail (a full disk, a removed folder) drops what it cannot write. Logging
every failure would flood the journal (the jsonl sink writes about 50 batches a second);
logging none would hide the loss. :class:`Outage` logs the first failure, with its reason,
and the first success after it, with what was lost in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass


@dataclass
class Outage:
    """The current outage of one output, if any.

    Attributes:
        log: the sink's logger.
        where: the output's name (a path, ``stdout``), the messages' first ``%s``.
        failing: the ERROR logged when an outage starts; then ``%s`` is the reason.
        recovered: logged when it ends; then ``%d`` is the number of items lost meanwhile.
        recovered_level: the level of ``recovered``.
        lost: items lost in the current outage; None while writes work.
    """

    log: logging.Logger
    where: str
    failing: str
    recovered: str
    recovered_level: int = logging.WARNING
    lost: int | None = None

    def failed(self, reason: object, items: int = 1) -> None:
        """``items`` were lost; log the reason if this failure starts an outage."""
        if self.lost is None:
            self.lost = 0
            self.log.error(self.failing, self.where, reason)
        self.lost += items

    def worked(self) -> None:
        """A write worked: end the outage, if any, saying what it cost."""
        if self.lost is not None:
            self.log.log(self.recovered_level, self.recovered, self.where, self.lost)
            self.lost = None
