"""The API's pure parts: stream framing, a create body's checks, PathStat."""

from __future__ import annotations

import base64
import json
import socket
import struct

import pytest

from portique.api import streams
from portique.api.container_io import _stat_header
from portique.engine.request import split_create_body
from portique.errors import InvalidArgument


def test_frames_are_dockers_8_byte_header() -> None:
    assert streams.frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    big = streams.frame(2, b"x" * 70000)
    assert struct.unpack(">BxxxI", big[:8]) == (2, 70000)
    assert len(big) == 70008


def test_client_alive_tells_a_half_close_from_a_close() -> None:
    a, b = socket.socketpair()
    try:
        assert streams.client_alive(a)
        b.shutdown(socket.SHUT_WR)
        assert streams.client_alive(a, half_close_ok=True)
        assert not streams.client_alive(a)
        b.close()
        assert not streams.client_alive(a, half_close_ok=True)
    finally:
        a.close()


def test_what_the_docker_cli_sends_passes() -> None:
    body = {
        "Image": "busybox",
        "Cmd": ["true"],
        "Env": None,
        "Labels": {},
        "HostConfig": {
            "NetworkMode": "default",
            "LogConfig": {"Type": "", "Config": {}},
            "MemorySwappiness": -1,
            "ConsoleSize": [0, 0],
            "ShmSize": 0,
            "Devices": [],
            "OomKillDisable": False,
            "CgroupnsMode": "",
        },
        "NetworkingConfig": {
            "EndpointsConfig": {"default": {"IPAMConfig": None, "Links": None, "MacAddress": ""}}
        },
    }
    config, host, networking = split_create_body(body)
    assert config == {"Image": "busybox", "Cmd": ["true"], "Env": None, "Labels": {}}
    assert host["NetworkMode"] == "bridge"
    assert host["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert "ShmSize" not in host
    assert networking is None


def test_an_endpoint_keeps_aliases_and_address() -> None:
    _, _, networking = split_create_body(
        {
            "Image": "b",
            "HostConfig": {"NetworkMode": "app"},
            "NetworkingConfig": {
                "EndpointsConfig": {
                    "app": {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}},
                    "other": {},
                }
            },
        }
    )
    assert networking == {
        "EndpointsConfig": {
            "app": {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}},
            "other": {"Aliases": None},
        }
    }


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"Image": "b", "Tty": "yes"}, "invalid Config.Tty: want boolean, got str"),
        ({"Image": "b", "HostConfig": {"Memory": True}}, "invalid HostConfig.Memory: want integer"),
        (
            {"Image": "b", "HostConfig": {"Sysctls": {"a": "1"}}},
            "HostConfig.Sysctls is not supported",
        ),
        ({"Image": "b", "HostConfig": []}, "invalid HostConfig: want an object"),
        (
            {"Image": "b", "NetworkingConfig": {"EndpointsConfig": {"n": {"Links": ["x"]}}}},
            "NetworkingConfig.EndpointsConfig.n.Links is not supported",
        ),
        ({"Image": "b", "MacAddress": "02:42:ac:11:00:02"}, "Config.MacAddress is not supported"),
        ({"Image": "b", "Labels": {"a": 1}}, "invalid Config.Labels: values must be strings"),
    ],
)
def test_refusals_name_the_field(body: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        split_create_body(body)
    assert str(err.value).startswith(words)


def test_path_stat_is_gos_file_mode() -> None:
    header = _stat_header(
        {"name": "etc", "size": 4096, "mode": 0o40755, "mtime": 1.5, "linkTarget": ""}
    )
    stat = json.loads(base64.b64decode(header))
    assert stat["mode"] == (1 << 31) | 0o755
    assert stat["mtime"] == "1970-01-01T00:00:01.500000000Z"
    link = json.loads(base64.b64decode(_stat_header(
        {"name": "l", "size": 1, "mode": 0o120777, "mtime": 0, "linkTarget": "/x"}
    )))  # fmt: skip
    assert link["mode"] == (1 << 27) | 0o777
