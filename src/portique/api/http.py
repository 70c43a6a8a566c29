"""HTTP/1.1 on one connection, with h11: requests in, responses or streams out.

One Connection per worker process. Bodies are read on demand (a handler that
wants none leaves it, and it is drained before the next request); a JSON body
is bounded. A stream is chunked; a hijack answers 101 (or 200 for a client
that did not ask to upgrade, as dockerd) and hands the socket over.
"""

from __future__ import annotations

import io
import socket
from http import HTTPStatus
from typing import Any

import h11

from portique.api.types import BodyTooLarge
from portique.api.versions import STANDARD_HEADERS

MAX_HEAD = 64 * 1024

__all__ = ["Connection", "Stream"]


class ClientGone(Exception):
    """The client closed the connection."""


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.request: h11.Request | None = None
        self._body_done = False
        self.hijacked = False
        self.stream: Stream | None = None
        self.stream_headers: list[tuple[str, str]] = []  # for the next stream's head

    # -- input ---------------------------------------------------------------------

    def _event(self) -> Any:
        for _ in range(1 << 40):
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = self.sock.recv(65536)
            except (ConnectionError, TimeoutError):
                data = b""
            self.h11.receive_data(data)
        raise ClientGone

    def next_request(self) -> h11.Request | None:
        """The next request's head, or None when the client is done."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        elif self.h11.our_state is not h11.IDLE:
            return None  # a failed or closing exchange: no more on this connection
        event = self._event()
        if isinstance(event, h11.Request):
            self.request = event
            self._body_done = False
            self.stream = None
            self.stream_headers = []
            return event
        return None

    def body_chunks(self) -> Any:
        while not self._body_done:
            event = self._event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._body_done = True
            else:
                raise ClientGone

    def read_body(self, limit: int) -> bytes:
        length = self.header("content-length")
        if length.isdigit() and int(length) > limit:
            raise BodyTooLarge(f"request body too large: {length} bytes, the limit is {limit}")
        out = bytearray()
        for chunk in self.body_chunks():
            out += chunk
            if len(out) > limit:
                raise BodyTooLarge(f"request body too large: more than {limit} bytes")
        return bytes(out)

    def body_reader(self) -> io.BufferedReader:
        return io.BufferedReader(_BodyRaw(self), 65536)

    def drain(self, limit: int = 1 << 20) -> bool:
        """Read what is left of the body; False if too much was left (close then)."""
        seen = 0
        try:
            for chunk in self.body_chunks():
                seen += len(chunk)
                if seen > limit:
                    return False
        except (ClientGone, h11.RemoteProtocolError):
            return False
        return True

    def header(self, name: str) -> str:
        if self.request is None:
            return ""
        want = name.lower().encode()
        for key, value in self.request.headers:
            if key == want:
                return value.decode("latin-1")
        return ""

    # -- output ----------------------------------------------------------------------

    def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.sock.sendall(data)

    def respond(
        self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]]
    ) -> None:
        hdrs = [*STANDARD_HEADERS, *((k.encode(), v.encode()) for k, v in headers)]
        if status not in (204, 304):
            hdrs += [
                (b"Content-Type", content_type.encode()),
                (b"Content-Length", str(len(body)).encode()),
            ]
        if not self._body_done and self.h11.their_state in (h11.SEND_BODY, h11.ERROR):
            hdrs.append((b"Connection", b"close"))
        self._send(h11.Response(status_code=status, headers=hdrs, reason=_reason(status)))
        head_only = self.request is not None and self.request.method == b"HEAD"
        if body and status not in (204, 304) and not head_only:
            self._send(h11.Data(data=body))
        self._send(h11.EndOfMessage())

    def start_stream(self, status: int, content_type: str) -> Stream:
        self._send(
            h11.Response(
                status_code=status,
                reason=_reason(status),
                headers=[
                    *STANDARD_HEADERS,
                    (b"Content-Type", content_type.encode()),
                    (b"Transfer-Encoding", b"chunked"),
                    *((k.encode(), v.encode()) for k, v in self.stream_headers),
                ],
            )
        )
        self.stream = Stream(self)
        return self.stream

    def hijack(self, content_type: str) -> tuple[socket.socket, bytes]:
        """Answer the upgrade and return the raw socket with what the client
        already sent past the request."""
        self.drain()
        upgrade = self.header("upgrade").lower() == "tcp"
        self.hijacked = True
        if upgrade:
            self._send(
                h11.InformationalResponse(
                    status_code=101,
                    headers=[
                        (b"Content-Type", content_type.encode()),
                        (b"Connection", b"Upgrade"),
                        (b"Upgrade", b"tcp"),
                    ],
                    reason=b"UPGRADED",
                )
            )
            rest, _closed = self.h11.trailing_data
            return self.sock, bytes(rest)
        # An old client: dockerd answers 200 and then the raw stream without
        # framing; h11 would chunk it, so this one status line is written here.
        self.sock.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type.encode() + b"\r\n\r\n"
        )
        rest, _closed = self.h11.trailing_data
        return self.sock, bytes(rest)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class Stream:
    """A chunked response body; each write goes out at once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.closed = False

    def write(self, data: bytes) -> None:
        if data:
            self.conn._send(h11.Data(data=data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.conn._send(h11.EndOfMessage())


class _BodyRaw(io.RawIOBase):
    def __init__(self, conn: Connection) -> None:
        self._chunks = conn.body_chunks()
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf:
            self._buf = next(self._chunks, b"")
            if not self._buf:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
