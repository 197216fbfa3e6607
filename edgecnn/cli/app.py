"""The Typer application: the root command, its commands loaded on demand, and the error
handling shared by every command.

Commands live one per module in this package and are listed in :data:`COMMANDS`. Each
command parses its options, calls one library function and prints; it never holds logic
of its own. A command's module is imported only when that command runs or when help lists
it, so ``edgecnn run`` on a board pays neither for dataset parsing nor for the model zoo;
what a command needs beyond its options (numpy, OpenCV, TensorFlow) it imports inside its
function, after checking its input.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from edgecnn import __version__
from edgecnn.cli import _tfquiet
from edgecnn.errors import EdgecnnError

#: Every command, in the order ``edgecnn --help`` (and docs/cli.md) lists them: name ->
#: ``module:attribute``, a command function, or a ``typer.Typer`` for a command with sub-commands.
COMMANDS: dict[str, str] = {
    "data": "edgecnn.cli.data_cmd:data_app",
    "train": "edgecnn.cli.train_cmd:train_command",
    "eval": "edgecnn.cli.eval_cmd:eval_command",
    "eval-tracks": "edgecnn.cli.eval_tracks_cmd:eval_tracks",
    "calib": "edgecnn.cli.calib_cmd:calib_app",
    "quantize": "edgecnn.cli.quantize_cmd:quantize",
    "bench": "edgecnn.cli.bench_cmd:bench",
    "inspect": "edgecnn.cli.inspect_cmd:inspect_model",
    "run": "edgecnn.cli.run_cmd:run",
    "package": "edgecnn.cli.package_cmd:package",
    "deploy": "edgecnn.cli.deploy_cmd:deploy",
    "models": "edgecnn.cli.models_cmd:models",
}


def load_command(name: str, target: str) -> Any:
    """Import the command ``target`` (``module:attribute``) names, as a click command called ``name``."""
    module_name, _, attribute = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attribute)
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _LazyCommands(MutableMapping[str, Any]):
    """Command name -> click command; a command's module is imported on first access."""

    def __init__(self, targets: dict[str, str]) -> None:
        self._targets = dict(targets)
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = load_command(name, self._targets[name])  # KeyError: no such command
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._targets.setdefault(name, "")
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._targets[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)


class _RootGroup(TyperGroup):
    """The ``edgecnn`` group: commands from :data:`COMMANDS`, imported when first needed, and
    edgecnn errors turned into one line on stderr and the error's exit code."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        registered = dict(self.commands)
        self.commands = _LazyCommands(COMMANDS)
        self.commands.update(registered)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: listing must not import every command

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _USAGE_ERROR as exc:  # a bad root option
            _usage_error(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EdgecnnError as exc:
            if os.environ.get("EDGECNN_DEBUG"):
                raise
            typer.echo(f"edgecnn: error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except _USAGE_ERROR as exc:  # a command's bad flag or argument
            _usage_error(exc)
        except KeyboardInterrupt as exc:  # Ctrl-C: one line (what was kept, when the work says), exit 130
            if os.environ.get("EDGECNN_DEBUG"):
                raise
            typer.echo(f"edgecnn: interrupted{': ' if str(exc) else ''}{exc}", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `edgecnn ... | head` closed our output: end quietly, as Unix tools do
            _quiet_broken_pipe()
        except OSError as exc:  # a path no up-front check caught (/proc/x, a full disk): no traceback
            if os.environ.get("EDGECNN_DEBUG"):
                raise
            typer.echo(f"edgecnn: error: {os_error_line(exc)}", err=True)
            raise typer.Exit(2 if exc.errno in _PATH_ERRNOS else 1) from None


def _quiet_broken_pipe() -> NoReturn:
    """Exit 1 without a word when the reader of stdout has gone (Python's documented recipe:
    point stdout at /dev/null so that the interpreter's last flush cannot fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(1)


# Typer's click (its own vendored copy in recent versions, else click) raises these for bad
# flags and arguments; found through the public typer.BadParameter, whichever click it is.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_NO_ARGS_IS_HELP = getattr(sys.modules[typer.BadParameter.__module__], "NoArgsIsHelpError", ())


#: OSErrors that mean the path given was wrong (exit 2); any other (a full disk, I/O) exits 1.
_PATH_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EEXIST,
        errno.EROFS,
        errno.ENAMETOOLONG,
    }
)


def os_error_line(exc: OSError) -> str:
    """``path: reason`` (``path -> other: reason`` for a rename), without Python's ``[Errno N]``."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    if exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    return f"{exc.filename}: {reason}"


def usage_error_line(exc: Exception) -> str:
    """A click usage error as edgecnn's one line, naming the command and where its help is:
    ``edgecnn: error: data synth: invalid value for '--n': 0 is not in the range x>=1 (see
    edgecnn data synth --help)``."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "edgecnn"
    message = " ".join(exc.format_message().split()).rstrip(".")  # type: ignore[attr-defined]
    message = message[:1].lower() + message[1:]
    command = path.partition(" ")[2]
    return f"edgecnn: error: {command + ': ' if command else ''}{message} (see {path} --help)"


def _usage_error(exc: Exception) -> NoReturn:
    if isinstance(exc, _NO_ARGS_IS_HELP):  # a group without its sub-command: show its help
        raise exc
    typer.echo(usage_error_line(exc), err=True)
    raise typer.Exit(getattr(exc, "exit_code", 2)) from None


app = typer.Typer(
    name="edgecnn",
    cls=_RootGroup,
    help="Train, int8-quantise, package and run small CNNs on Raspberry Pi class boards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """edgecnn: from a dataset to int8 detections on an arm64 board."""
    _tfquiet.install()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:  # TensorFlow's own INFO lines ("Assets written to ...") say nothing to a user
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
