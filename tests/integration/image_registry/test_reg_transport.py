"""The registry transport against a small in-process HTTP server: keep-alive reuse,
retries, redirects, cut bodies, the scheme probe (no registry: loopback only)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from portique.image.registry.errors import RegistryUnreachable
from portique.image.registry.transport import (
    READ_TIMEOUT,
    RETRY_AFTER_MAX,
    Transport,
    TransportError,
)
from support.registry import Registry

Reply = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    """Answers each request with the next of `replies` (the last one repeats)."""

    replies: list[Reply]
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    connections: int = 0
    _httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> Server:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append((self.command, self.path, dict(self.headers.items())))
                i = min(len(server.requests), len(server.replies)) - 1
                server.replies[i](self)

            do_HEAD = do_POST = do_PUT = do_GET

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def reply(status: int, body: bytes = b"", **headers: str) -> Reply:
    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    return send


def cut(declared: int, sent: bytes) -> Reply:
    """A body that stops short of its Content-Length, then the connection drops."""

    def send(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        h.wfile.write(sent)
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    return send


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*replies: Reply) -> Server:
        s = Server(list(replies)).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def body(t: Transport, url: str, method: str = "GET", **kw: Any) -> tuple[int, bytes]:
    resp = t.request(method, url, **kw)
    data = b"".join(resp.stream(1 << 16))
    resp.release_conn()
    return resp.status, data


def test_keep_alive_connection_is_reused(serve: Callable[..., Server]) -> None:
    s = serve(reply(200, b"hello"))
    t = Transport()
    assert body(t, s.url("/a")) == (200, b"hello")
    assert body(t, s.url("/b")) == (200, b"hello")
    head = t.request("HEAD", s.url("/c"))
    head.release_conn()
    assert body(t, s.url("/d")) == (200, b"hello")
    assert s.connections == 1
    t.clear()


def test_a_body_cut_short_is_an_error_not_a_short_success(serve: Callable[..., Server]) -> None:
    s = serve(cut(1000, b"x" * 10), reply(200, b"whole"))
    t = Transport()
    resp = t.request("GET", s.url("/blob"))
    with pytest.raises(TransportError, match="990 bytes"):
        b"".join(resp.stream(1 << 16))
    resp.release_conn()  # closed, not pooled
    assert body(t, s.url("/blob")) == (200, b"whole")
    assert s.connections == 2


def test_get_is_retried_on_5xx_and_post_is_not(serve: Callable[..., Server]) -> None:
    s = serve(reply(503), reply(200, b"ok"))
    t = Transport()
    assert body(t, s.url("/v2/")) == (200, b"ok")
    s = serve(reply(503), reply(200, b"ok"))
    assert body(t, s.url("/v2/x/blobs/uploads/"), "POST", body=b"") == (503, b"")


def test_retries_end_with_the_last_answer(serve: Callable[..., Server]) -> None:
    s = serve(reply(429, b"slow down", Retry_After="0"))
    t = Transport()
    assert body(t, s.url("/v2/")) == (429, b"slow down")
    assert len(s.requests) == 4  # the request and its 3 retries


def test_redirect_off_host_drops_authorization(serve: Callable[..., Server]) -> None:
    storage = serve(reply(200, b"blob bytes"))
    front = serve(reply(307, Location=storage.url("/_storage/b", host="localhost")))
    t = Transport()
    status, data = body(t, front.url("/v2/r/blobs/sha256:1"), headers={"Authorization": "x"})
    assert (status, data) == (200, b"blob bytes")
    assert front.requests[0][2].get("Authorization") == "x"
    assert "Authorization" not in storage.requests[0][2]
    assert storage.requests[0][1] == "/_storage/b"


def test_same_host_redirect_keeps_authorization(serve: Callable[..., Server]) -> None:
    s = serve(reply(302, Location="/moved"), reply(200, b"here"))
    t = Transport()
    assert body(t, s.url("/v2/"), headers={"Authorization": "x"}) == (200, b"here")
    assert s.requests[1][1] == "/moved"
    assert s.requests[1][2].get("Authorization") == "x"


def test_a_redirect_loop_ends(serve: Callable[..., Server]) -> None:
    s = serve(reply(302, Location="/again"))
    with pytest.raises(RegistryUnreachable, match="too many redirects"):
        Transport().request("GET", s.url("/v2/"))


def test_probe_falls_back_to_plain_http(serve: Callable[..., Server]) -> None:
    s = serve(reply(200, b"{}"))
    t = Transport()
    assert t.base_url(f"127.0.0.1:{s.port}") == f"http://127.0.0.1:{s.port}"
    # Not insecure: HTTPS, no probe.
    assert Transport(loopback_insecure=False).base_url("reg.example") == "https://reg.example"


def test_refused_connection_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t = Transport()
    # A PUT: connect retries only, so the backoff stays short (0.4 + 0.8 s).
    with pytest.raises(RegistryUnreachable, match=f"cannot reach registry 127.0.0.1:{port}"):
        t.request("PUT", f"http://127.0.0.1:{port}/v2/", body=b"")


def test_a_servers_retry_after_is_bounded(
    serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    s = serve(reply(503, Retry_After="999999"), reply(200, b"ok"))
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    assert body(Transport(), s.url("/v2/")) == (200, b"ok")
    assert slept == [RETRY_AFTER_MAX]


def test_non_http_urls_are_refused() -> None:
    with pytest.raises(RegistryUnreachable, match="unsupported URL"):
        Transport().request("GET", "file:///etc/passwd")


def test_a_bad_ca_file_is_a_registry_error(tmp_path: Path) -> None:
    (tmp_path / "reg.example:5000").mkdir()
    (tmp_path / "reg.example:5000" / "ca.crt").write_text("not a certificate\n")
    t = Transport(certs_dirs=(tmp_path,))
    with pytest.raises(RegistryUnreachable, match=r"cannot use .*ca\.crt"):
        t.request("GET", "https://reg.example:5000/v2/")


def test_the_probes_connection_serves_on_with_the_usual_timeout(
    fresh_registry: Callable[..., Registry],
) -> None:
    reg = fresh_registry("plain", tls=True)
    t = Transport()
    assert t.base_url(reg.host) == f"https://{reg.host}"
    idle = [c for pool in t._idle.values() for c in pool]
    assert len(idle) == 1
    assert idle[0].sock is not None
    assert idle[0].sock.gettimeout() == READ_TIMEOUT  # not the probe's 2 s
    assert body(t, f"https://{reg.host}/v2/")[0] == 200
    assert [c for pool in t._idle.values() for c in pool] == idle  # reused
    t.clear()
