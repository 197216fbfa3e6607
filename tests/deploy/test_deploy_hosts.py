"""Host specs and hosts files: parsed strictly, errors as one line naming the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.deploy.hosts import Host, gather_hosts, parse_host, read_hosts_file
from edgecnn.errors import UserError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pi@raspberrypi.local", Host("raspberrypi.local", "pi", None)),
        ("pi@raspberrypi.local:2222", Host("raspberrypi.local", "pi", 2222)),
        ("raspberrypi", Host("raspberrypi", None, None)),
        ("pi@192.168.1.20:22", Host("192.168.1.20", "pi", 22)),
        ("pi@[fd00::2]:2200", Host("fd00::2", "pi", 2200)),
        ("admin_1@[::1]", Host("::1", "admin_1", None)),
        ("  pi@board-7.lan  ", Host("board-7.lan", "pi", None)),
    ],
)
def test_valid_specs(spec: str, expected: Host) -> None:
    assert parse_host(spec) == expected


def test_str_round_trips_and_default_port() -> None:
    for spec in ("pi@board:2222", "pi@[fd00::2]:22", "board"):
        assert str(parse_host(spec)) == spec
    assert parse_host("pi@board", default_port=2422).port == 2422
    assert parse_host("pi@board:22", default_port=2422).port == 22
    assert parse_host("pi@[fd00::2]").destination == "pi@fd00::2"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty host spec"),
        ("pi@", "'' is not a valid host name"),
        ("pi@-oProxyCommand=touch", "is not a valid host name"),
        ("-oProxyCommand=x@board", "is not a valid user name"),
        ("pi@board:0", "port '0' is not a number from 1 to 65535"),
        ("pi@board:70000", "port '70000'"),
        ("pi@board:ssh", "port 'ssh'"),
        ("pi@fd00::2", "write an IPv6 address in brackets"),
        ("pi@[fd00::2", "missing ']'"),
        ("pi@[nothex]:22", "is not an IPv6 address"),
        ("pi@bad_host!", "is not a valid host name"),
        ("pi@board;rm -rf /", "is not a valid host name"),
    ],
)
def test_bad_specs_are_one_line_user_errors(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        parse_host(spec)
    assert "\n" not in str(caught.value)


def test_hosts_file_comments_blank_lines_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text("# kitchen and garage\npi@kitchen.lan\n\npi@garage.lan:2222  # the old Pi 4\n")
    assert read_hosts_file(path) == [Host("kitchen.lan", "pi"), Host("garage.lan", "pi", 2222)]
    path.write_text("pi@ok\npi@bad:port\n")
    with pytest.raises(UserError, match=r"hosts.txt:2: host 'pi@bad:port'"):
        read_hosts_file(path)
    with pytest.raises(UserError, match="no such file"):
        read_hosts_file(tmp_path / "missing.txt")


def test_gather_keeps_order_drops_duplicates_and_needs_one(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text("pi@b\npi@a\n")
    assert gather_hosts(["pi@a", "pi@c"], path) == [Host("a", "pi"), Host("c", "pi"), Host("b", "pi")]
    with pytest.raises(UserError, match="no host to deploy to"):
        gather_hosts([], None)
