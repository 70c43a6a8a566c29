"""The API's HTTP layer without the kernel: routing, versions, errors, bodies.

Each test serves one connection of a socketpair in a thread (the worker's
loop, api/worker.py) and talks raw HTTP/1.1 to it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.api import router as rt
from portique.api.types import Request, Response, Route, json_response
from portique.api.worker import serve_connection
from portique.engine.engine import Engine
from portique.errors import Conflict, InvalidArgument, NoSuchObject


def _echo(req: Request) -> Response:
    return json_response({"body": req.json(), "params": req.params, "v": list(req.api_version)})


def _missing(req: Request) -> Response:
    raise NoSuchObject("container", req.params["id"])


def _conflict(req: Request) -> Response:
    raise Conflict("the container name is already in use", hint="remove it")


def _bad(req: Request) -> Response:
    raise InvalidArgument("bad thing")


def _stream(req: Request) -> None:
    out = req.stream()
    out.write(b'{"a":1}\n')
    out.write(b'{"a":2}\n')


ROUTES = [
    Route("POST", "/echo/{id}", _echo),
    Route("GET", "/images/{name:path}/json", _echo),
    Route("GET", "/missing/{id}", _missing),
    Route("POST", "/conflict", _conflict),
    Route("POST", "/bad", _bad),
    Route("GET", "/stream", _stream),
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[socket.socket]:
    router = rt.Router(ROUTES + __import__("portique.api.system_base").api.system_base.ROUTES)
    ours, theirs = socket.socketpair()
    eng = Engine(tmp_path / "root", tmp_path / "run")
    t = threading.Thread(target=serve_connection, args=(theirs, eng, router), daemon=True)
    t.start()
    ours.settimeout(10)
    yield ours
    ours.close()
    t.join(10)


def _exchange(sock: socket.socket, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request, read one response (Content-Length or chunked)."""
    sock.sendall(raw)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {buf!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if raw.split(b" ")[0] == b"HEAD" or status in (204, 304):
        return status, headers, b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = sock.recv(65536)
            assert chunk, f"closed {n - len(rest)} bytes before the end of the body"
            rest += chunk
        return status, headers, rest[:n]
    body = b""
    while not rest.endswith(b"0\r\n\r\n"):
        rest += sock.recv(65536)
    while rest:
        size_text, _, rest = rest.partition(b"\r\n")
        size = int(size_text, 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return status, headers, body


def _req(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        + body
    )


def test_ping_announces_the_version_and_the_classic_builder(client: socket.socket) -> None:
    status, headers, body = _exchange(client, _req("GET", "/_ping"))
    assert (status, body) == (200, b"OK")
    assert headers["api-version"] == rt.version_text(rt.API_VERSION)
    assert headers["builder-version"] == "1"
    assert headers["ostype"] == "linux"
    assert headers["docker-experimental"] == "false"
    status, headers, body = _exchange(client, _req("HEAD", "/v1.24/_ping"))
    assert status == 200
    assert headers["builder-version"] == "1"


def test_every_path_with_and_without_a_version_prefix(client: socket.socket) -> None:
    body = json.dumps({"x": 1}).encode()
    for path, version in (("/echo/abc", rt.API_VERSION), ("/v1.24/echo/abc", (1, 24))):
        status, _, out = _exchange(client, _req("POST", path, body))
        assert status == 200
        assert json.loads(out) == {"body": {"x": 1}, "params": {"id": "abc"}, "v": list(version)}
    status, _, out = _exchange(client, _req("GET", "/v1.41/images/reg:5000/a/b:1/json"))
    assert json.loads(out)["params"] == {"name": "reg:5000/a/b:1"}


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/v1.23/_ping", "client version 1.23 is too old. Minimum supported API version is 1.24"),
        ("/v1.99/_ping", "client version 1.99 is too new. Maximum supported API version is"),
    ],
)
def test_versions_outside_the_range_are_refused(
    client: socket.socket, path: str, words: str
) -> None:
    status, _, out = _exchange(client, _req("GET", path))
    assert status == 400
    assert json.loads(out)["message"].startswith(words)


def test_errors_are_dockers_message_and_status(client: socket.socket) -> None:
    cases = [
        (_req("GET", "/missing/web"), 404, "No such container: web"),
        (_req("POST", "/conflict"), 409, "the container name is already in use (remove it)"),
        (_req("POST", "/bad"), 400, "bad thing"),
        (_req("GET", "/nowhere"), 404, "page not found"),
        (_req("DELETE", "/conflict"), 405, "method DELETE not allowed for /conflict"),
        (_req("POST", "/echo/x", b"{not json"), 400, "invalid JSON in request body"),
        (
            _req("POST", "/echo/x", b"[1, 2]"),
            400,
            "invalid JSON in request body: expected an object",
        ),
    ]
    for raw, want_status, want in cases:  # one connection: each error leaves it usable
        status, headers, out = _exchange(client, raw)
        assert status == want_status, out
        assert headers["content-type"] == "application/json"
        assert json.loads(out)["message"].startswith(want)


def test_a_huge_body_is_refused_before_it_is_read(client: socket.socket) -> None:
    raw = b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{"
    status, headers, out = _exchange(client, raw)
    assert status == 413
    assert "request body too large" in json.loads(out)["message"]
    assert headers.get("connection") == "close"


def test_a_stream_is_chunked_and_the_connection_stays_usable(client: socket.socket) -> None:
    status, headers, out = _exchange(client, _req("GET", "/stream"))
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert out == b'{"a":1}\n{"a":2}\n'
    status, _, out = _exchange(client, _req("GET", "/_ping"))
    assert (status, out) == (200, b"OK")


def test_split_version() -> None:
    assert rt.split_version("/v1.30/containers/json") == ((1, 30), "/containers/json")
    assert rt.split_version("/containers/json") == (rt.API_VERSION, "/containers/json")
    assert rt.split_version("/v1/x") == (rt.API_VERSION, "/v1/x")


def test_malformed_http_is_a_400_in_dockers_shape(client: socket.socket) -> None:
    status, _, out = _exchange(client, b"GARBAGE\r\n\r\n")
    assert status == 400
    assert json.loads(out)["message"].startswith("malformed HTTP request")


def test_bad_chunked_body_is_a_400(client: socket.socket) -> None:
    raw = b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    status, _, out = _exchange(client, raw)
    assert status == 400
    assert "malformed HTTP request" in json.loads(out)["message"]
