"""Checks on where a command will write, made before it starts its work.

A command that trains for an hour, converts a model or downloads wheels must not fail at the
end because its output path cannot be written, and must never write over one of its own
inputs (``--save-results data.yaml``, ``quantize m.keras --out m.keras``). Each command calls
:func:`check_output` for every output it was given, before anything slow; the error names the
flag, the path and what is wrong, and nothing has been written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from edgecnn.errors import UserError


def check_output(
    path: str | Path,
    flag: str,
    kind: Literal["file", "dir"] = "file",
    inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Check that ``path`` can be created (or replaced) as a ``kind`` and is none of ``inputs``.

    Args:
        path: the output path as given.
        flag: how the user gave it (``--out``), for the message.
        kind: ``file``: an existing directory there is an error; ``dir``: an existing file is.
        inputs: the command's input files and folders (None entries are skipped). A ``file``
            output inside an input folder is an error too (a calibration set, a split's
            images), and so is a ``dir`` output holding an input (the command may clear it).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        UserError: the path is an input, the wrong kind of thing, under a file, or in a
            folder this user cannot write.
    """
    out = Path(path)
    target = out.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if source == target or (out.exists() and _same_file(out, source)):
            raise UserError(f"{flag} {out}: it is an input of this command ({given}); write elsewhere")
        if kind == "dir" and target in source.parents and out.is_dir():
            raise UserError(f"{flag} {out}: it holds an input of this command ({given}); write elsewhere")
        if kind == "file" and source in target.parents and source.is_dir():
            raise UserError(f"{flag} {out}: it is inside an input folder of this command ({given})")
    if out.exists():
        if kind == "file" and out.is_dir():
            raise UserError(f"{flag} {out}: is a directory, expected a file path")
        if kind == "dir" and not out.is_dir():
            raise UserError(f"{flag} {out}: is a file, expected a folder")
        if kind == "dir" and not os.access(out, os.W_OK | os.X_OK):
            raise UserError(f"{flag} {out}: cannot write in it (permission denied)")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {out}: cannot write in {parent} (permission denied)")
    _probe(parent, out, flag)
    return out


def _probe(folder: Path, out: Path, flag: str) -> None:
    problem = creation_problem(folder)
    if problem:
        raise UserError(f"{flag} {out}: cannot write in {folder} ({problem})")


def creation_problem(folder: Path) -> str | None:
    """Why no file can be created in ``folder``, or None: a temporary file is created and
    deleted there, as the permission bits do not tell everything (``/proc`` and ``/sys``
    refuse new files even to root, a read-only mount to anyone)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return str(exc.strerror or exc)
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` less the process umask.

    ``tempfile.mkstemp`` (used to write outputs atomically) creates files ``0o600``; outputs
    renamed into place get this mode instead, so that a model or report is as readable as
    any file the user writes (the board's service user reads the model, for one).
    """
    try:  # Linux: the umask without changing it (os.umask can only set it, racing other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
