"""Exception types that map to the CLI's exit codes.

A :class:`UserError` is something the user can fix (a bad flag, a broken dataset, a bad
config, an unreadable model): the CLI prints its message as one line on stderr and exits 2.
Any other :class:`EdgecnnError` is a runtime failure: one line, exit 1.
"""

from __future__ import annotations


class EdgecnnError(Exception):
    """Base class of edgecnn's own errors; exit code 1 in the CLI."""

    exit_code = 1


class UserError(EdgecnnError):
    """Bad input the user can fix; exit code 2 in the CLI."""

    exit_code = 2


class DataError(UserError):
    """A dataset file or entry is missing or malformed.

    Args:
        path: the file at fault (an annotation file, an image, a data.yaml).
        message: what is wrong, without the path.
        entry: the entry inside the file (a line number, an annotation id), if any.
    """

    def __init__(self, path: object, message: str, entry: str | None = None) -> None:
        self.path = str(path)
        self.entry = entry
        self.detail = message
        where = f"{self.path} ({entry})" if entry else self.path
        super().__init__(f"{where}: {message}")


class ModelError(UserError):
    """A model file cannot be used (missing, corrupt, wrong shape, no metadata)."""


class ConfigError(UserError):
    """A configuration value is invalid."""
