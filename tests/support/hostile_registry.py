"""A registry that breaks every layer download halfway, and answers 404 after.

    reg = HostileRegistry().start()
    reg.add("bad", "v1", image)          # support.oci_build.BuiltImage
    ... pull f"{reg.host}/bad:v1" ...    # the manifest and config arrive; each layer
                                         # stops at half its size, and any retry gets 404
    reg.stop()

What a client keeps of such downloads (partial files, lock files) must not pile
up however many images the registry makes up.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support import oci_build as ob

_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")


class HostileRegistry:
    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], ob.BuiltImage] = {}
        self.blobs: dict[str, bytes] = {}
        self.layers: set[str] = set()
        self.served: set[str] = set()
        self.cut = 0  # layer downloads broken so far
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def add(self, repo: str, tag: str, img: ob.BuiltImage) -> None:
        with self._lock:
            self.manifests[repo, tag] = img
            self.manifests[repo, img.manifest_digest] = img
            for digest, data in img.blobs():
                self.blobs[digest] = data
            self.layers.update(layer.digest for layer in img.layers)

    def start(self) -> HostileRegistry:
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle(self) -> None:
                # Clients try HTTPS first on loopback: fail the TLS hello at once.
                try:
                    first = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return
                if first != b"\x16":
                    super().handle()

            def do_GET(self) -> None:
                reg._handle(self)

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if path in ("/v2/", "/v2"):
            _reply(h, 200, b"{}", "application/json")
            return
        m = _MANIFEST.match(path)
        if m:
            img = self.manifests.get((m["repo"], m["ref"]))
            if img is None:
                _reply(h, 404, _error("MANIFEST_UNKNOWN"), "application/json")
                return
            _reply(
                h, 200, img.manifest, img.media_type, {"Docker-Content-Digest": img.manifest_digest}
            )
            return
        m = _BLOB.match(path)
        data = self.blobs.get(m["digest"]) if m else None
        if m is None or data is None:
            _reply(h, 404, _error("BLOB_UNKNOWN"), "application/json")
            return
        if m["digest"] not in self.layers:
            _reply(h, 200, data, "application/octet-stream")
            return
        with self._lock:
            again = m["digest"] in self.served
            self.served.add(m["digest"])
            if not again:
                self.cut += 1
        if again:  # a retry, resumed or not: gone (the pull fails fast)
            _reply(h, 404, _error("BLOB_UNKNOWN"), "application/json")
            return
        # The whole length announced, half of it sent, then the connection drops.
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command == "GET":
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)


def _error(code: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()


def _reply(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


__all__ = ["HostileRegistry"]
