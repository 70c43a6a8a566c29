"""A registry's answers are hostile: what `pull` does with the worst of them.

A tiny scripted registry on 127.0.0.1 serves a busybox image whose manifest
or blob answers are bent one way per test: digests that would be file names
out of the store (`..`, another algorithm, upper-case hex), a blob redirected
to file:// or to a service on the host's loopback, a blob longer than its
descriptor says (and a Content-Length to match), an endless manifest. Each
pull must fail with one line (or succeed only with verified content), never a
traceback, and write nothing but its own verified blobs.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import oci_build as ob
from support.engine_cli import Portique
from support.sec_engine import engine

Route = Callable[[BaseHTTPRequestHandler], bool]


class Scripted:
    """A registry serving one image; `bend(path_prefix, handler)` takes over a path."""

    def __init__(self, img: ob.BuiltImage, manifest: bytes | None = None) -> None:
        self.img = img
        self.manifest = manifest if manifest is not None else img.manifest
        self.blobs = dict(img.blobs())
        self.bent: dict[str, Route] = {}
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle(self) -> None:
                try:
                    first = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return
                if first != b"\x16":  # clients try TLS first on loopback: refuse it
                    super().handle()

            def do_GET(self) -> None:
                reg.serve(self)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        for prefix, route in self.bent.items():
            if path.startswith(prefix) and route(h):
                return
        if path in ("/v2/", "/v2"):
            reply(h, 200, b"{}")
        elif path.startswith("/v2/evil/manifests/"):
            reply(h, 200, self.manifest, self.img.media_type)
        elif path.startswith("/v2/evil/blobs/") and path.rsplit("/", 1)[1] in self.blobs:
            reply(h, 200, self.blobs[path.rsplit("/", 1)[1]])
        else:
            reply(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}')

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    ctype: str = "application/octet-stream",
    headers: dict[str, str] | None = None,
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    if h.command == "GET":
        h.wfile.write(body)


@pytest.fixture
def pq(tmp_path: Path) -> Iterator[Portique]:
    with engine(tmp_path, f"pq-sec-reg-{os.getpid()}") as p:
        yield p


def _pull_fails(pq: Portique, reg: Scripted) -> str:
    p = pq("pull", "-q", f"{reg.host}/evil:v1", timeout=120)
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.returncode != 0, "the pull of a bent image succeeded"
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    return p.stderr


def _stored(pq: Portique) -> dict[str, bytes]:
    out = {}
    for sub in ("blobs", "ingest"):
        for dirpath, _dirs, files in os.walk(pq.root / sub):
            for f in files:
                out[os.path.join(dirpath, f)] = Path(dirpath, f).read_bytes()
    return out


def _with_layer_digest(img: ob.BuiltImage, digest: str) -> bytes:
    doc = json.loads(img.manifest)
    doc["layers"][0]["digest"] = digest
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:../../../../../../tmp/pq-sec-traversal",
        "sha256:" + "A" * 64,
        "SHA256:" + "a" * 64,
        "sha384:" + "a" * 96,
        "sha256:" + "a" * 63 + "/",
    ],
)
def test_digests_that_are_not_file_names(pq: Portique, digest: str) -> None:
    img = ob.busybox_image()
    reg = Scripted(img, _with_layer_digest(img, digest))
    try:
        err = _pull_fails(pq, reg)
    finally:
        reg.stop()
    assert "digest" in err
    assert not Path("/tmp/pq-sec-traversal").exists()
    assert all(Path(p).resolve().is_relative_to(pq.root) for p in _stored(pq))


def test_blob_redirected_to_a_local_file(pq: Portique) -> None:
    img = ob.busybox_image()
    reg = Scripted(img)
    layer = img.layers[0].digest

    def to_file(h: BaseHTTPRequestHandler) -> bool:
        reply(h, 307, b"", headers={"Location": "file:///etc/shadow"})
        return True

    reg.bent[f"/v2/evil/blobs/{layer}"] = to_file
    try:
        _pull_fails(pq, reg)
    finally:
        reg.stop()
    shadow = Path("/etc/shadow").read_bytes()
    assert not any(shadow[:32] in data for data in _stored(pq).values())


def test_blob_redirected_to_a_loopback_service_is_never_kept(pq: Portique) -> None:
    """Docker follows a blob's redirect wherever it goes; what comes back is kept
    only if it hashes to the digest the manifest named."""
    img = ob.busybox_image()
    secret = b"internal service answer " + os.urandom(16).hex().encode()
    inner = Scripted(img)

    def answer(h: BaseHTTPRequestHandler) -> bool:
        reply(h, 200, secret)
        return True

    inner.bent["/secret"] = answer
    reg = Scripted(img)
    layer = img.layers[0].digest

    def to_service(h: BaseHTTPRequestHandler) -> bool:
        reply(h, 307, b"", headers={"Location": f"http://{inner.host}/secret"})
        return True

    reg.bent[f"/v2/evil/blobs/{layer}"] = to_service
    try:
        _pull_fails(pq, reg)
    finally:
        reg.stop()
        inner.stop()
    assert not any(secret in data for data in _stored(pq).values())


def test_blob_longer_than_its_descriptor(pq: Portique) -> None:
    img = ob.busybox_image()
    reg = Scripted(img)
    layer = img.layers[0]
    flood = layer.blob + os.urandom(8 << 20)

    def too_long(h: BaseHTTPRequestHandler) -> bool:
        reply(h, 200, flood)
        return True

    reg.bent[f"/v2/evil/blobs/{layer.digest}"] = too_long
    try:
        err = _pull_fails(pq, reg)
    finally:
        reg.stop()
    assert "manifest says" in err or "larger" in err, err
    assert all(len(data) <= len(layer.blob) for data in _stored(pq).values())


def test_endless_manifest(pq: Portique) -> None:
    img = ob.busybox_image()
    reg = Scripted(img)

    def endless(h: BaseHTTPRequestHandler) -> bool:
        h.send_response(200)
        h.send_header("Content-Type", img.media_type)
        h.send_header("Content-Length", str(1 << 34))
        h.end_headers()
        if h.command == "GET":
            chunk = b" " * (1 << 20)
            try:
                for _ in range(1 << 14):
                    h.wfile.write(chunk)
            except OSError:
                pass  # the client hung up: what we wanted
        return True

    reg.bent["/v2/evil/manifests/"] = endless
    try:
        err = _pull_fails(pq, reg)
    finally:
        reg.stop()
    assert "manifest" in err
