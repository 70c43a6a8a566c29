"""The warm fork-server's wire format and the thin client's fall-back (no root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portique.cli.docker import main
from portique.engine.engine import DEFAULT_RUNROOT
from portique.warm import client, protocol


def test_a_request_round_trips() -> None:
    data = protocol.encode_request(["portique", "run", "-e", "A=B", "x y"], 0o027)
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    req = protocol.Request(data[4:])
    assert req.argv == ["portique", "run", "-e", "A=B", "x y"]
    assert req.umask == 0o027
    assert req.env == dict(os.environb)
    assert (req.exe, req.pkg) == protocol.identity()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"something-else\0a\0b\0" + b"18\0" + b"0",
        protocol.MAGIC + b"\0e\0p\0" + b"18\0" + b"5\0a",
    ],
)
def test_a_bad_request_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"request|argument count"):
        protocol.Request(body)


def test_the_exit_status_line() -> None:
    assert protocol.parse_exit(b"X0\n") == 0
    assert protocol.parse_exit(b"Rbusy\nX256\n") == 256
    assert protocol.parse_exit(b"") is None
    assert protocol.parse_exit(b"Xgarbage") is None


def test_the_clients_default_run_root_is_the_engines() -> None:
    assert str(DEFAULT_RUNROOT) == main.DEFAULT_RUNROOT


def test_no_server_means_in_process(tmp_path: Path) -> None:
    assert client.run(["portique", "--version"], str(tmp_path)) is None
    (tmp_path / protocol.SOCKET_NAME).write_text("")  # not a socket: refused connect
    assert client.run(["portique", "--version"], str(tmp_path)) is None
