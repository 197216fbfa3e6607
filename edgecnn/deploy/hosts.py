"""Host specs (``user@host[:port]``) and hosts files, checked before anything connects.

A spec is ``[user@]host[:port]``; an IPv6 address goes in brackets (``pi@[fd00::2]:22``). A
hosts file has one spec per line; blank lines and ``#`` comments are skipped. Names are
checked strictly, so nothing that reaches ``ssh``'s command line can be read as an option.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import UserError
from edgecnn.inputs import read_text_input

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


@dataclass(frozen=True)
class Host:
    """One board to deploy to.

    Args:
        host: host name or IP address (IPv6 without brackets).
        user: login user; None: ssh's default (``~/.ssh/config`` or the local user).
        port: ssh port; None: ssh's default (22 or ``~/.ssh/config``).
    """

    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        """``user@host`` as ssh takes it."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.user}@{host}" if self.user else host
        return f"{text}:{self.port}" if self.port else text


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UserError(f"host {spec!r}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def parse_host(spec: str, default_port: int | None = None) -> Host:
    """Parse ``[user@]host[:port]``; ``default_port`` applies when the spec has none.

    Raises:
        UserError: an empty or malformed user, host or port (one line naming the spec).
    """
    text = spec.strip()
    if not text:
        raise UserError("empty host spec: expected user@host[:port]")
    user = None
    if "@" in text:
        user, _, text = text.rpartition("@")
        if not _USER.fullmatch(user):
            raise UserError(f"host {spec!r}: {user!r} is not a valid user name")
    port = default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise UserError(f"host {spec!r}: missing ']' after the IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise UserError(f"host {spec!r}: expected ':PORT' after ']'")
            port = _port(rest[1:], spec)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UserError(f"host {spec!r}: {host!r} is not an IPv6 address") from None
        return Host(host=host, user=user, port=port)
    if text.count(":") > 1:
        raise UserError(f"host {spec!r}: write an IPv6 address in brackets, e.g. pi@[{text}]:22")
    host, sep, port_text = text.partition(":")
    if sep:
        port = _port(port_text, spec)
    if not _HOSTNAME.fullmatch(host):
        raise UserError(f"host {spec!r}: {host!r} is not a valid host name or address")
    return Host(host=host, user=user, port=port)


def read_hosts_file(path: Path, default_port: int | None = None) -> list[Host]:
    """The hosts of a hosts file, in order (``#`` comments and blank lines skipped).

    Raises:
        UserError: the file cannot be read, or a line is not a host spec (naming the line).
    """
    lines = read_text_input(path, "--hosts", max_bytes=1 << 20).splitlines()
    hosts = []
    for number, line in enumerate(lines, start=1):
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        try:
            hosts.append(parse_host(spec, default_port))
        except UserError as exc:
            raise UserError(f"{path}:{number}: {exc}") from None
    return hosts


def gather_hosts(specs: Iterable[str], hosts_file: Path | None = None, port: int | None = None) -> list[Host]:
    """The boards of the command line and the hosts file, in order, each once.

    Raises:
        UserError: a bad spec, an unreadable hosts file, or no host at all.
    """
    hosts = [parse_host(spec, port) for spec in specs]
    if hosts_file is not None:
        hosts += read_hosts_file(hosts_file, port)
    unique = list(dict.fromkeys(hosts))
    if not unique:
        raise UserError("no host to deploy to: name one or more user@host[:port], or pass --hosts FILE")
    return unique
