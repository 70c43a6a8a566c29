"""A worker: the requests of one connection, one after the other.

Runs in the process forked for the connection (forking.py). A handler's
exception becomes Docker's error answer (errors.py) unless the answer had
begun (a stream, a hijack): then the connection just closes.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import urllib.parse
from typing import TYPE_CHECKING

import h11

from portique.api import router as rt
from portique.api.errors import error_body, status_and_message
from portique.api.http import ClientGone, Connection
from portique.api.types import BodyTooLarge, Request
from portique.errors import PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine

MAX_REQUESTS = 1 << 20  # per connection; a bound, not a limit anyone meets

__all__ = ["serve_connection"]


def serve_connection(sock: socket.socket, eng: Engine, router: rt.Router) -> int:
    conn = Connection(sock)
    try:
        for _ in range(MAX_REQUESTS):
            try:
                head = conn.next_request()
            except h11.RemoteProtocolError as exc:
                # Not HTTP/1.1 as h11 reads it (a bad request line, a head
                # over 64 KiB): Docker's error shape, then close.
                with contextlib.suppress(Exception):
                    status, message = status_and_message(exc)
                    conn.respond(status, error_body(message), "application/json", [])
                break
            if head is None:
                break
            if not _one(conn, head, eng, router) or conn.hijacked:
                break
    except (ClientGone, OSError):
        pass
    finally:
        if not conn.hijacked:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    return 0


def _one(conn: Connection, head: object, eng: Engine, router: rt.Router) -> bool:
    """Serve one request; False when the connection must close."""
    assert isinstance(head, h11.Request)
    method = head.method.decode("ascii", "replace")
    target = head.target.decode("latin-1")
    parts = urllib.parse.urlsplit(target)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
    path = parts.path
    try:
        version, path = rt.split_version(urllib.parse.unquote(parts.path))
        handler, params = router.find(method, path)
        req = Request(
            method=method,
            path=path,
            query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            eng=eng,
            conn=conn,
            api_version=version,
            params=params,
        )
        answer = handler(req)
        if conn.hijacked:
            return False
        if answer is None:
            if conn.stream is None:
                raise RuntimeError(f"{method} {path}: the handler gave no answer")
            conn.stream.close()
            return conn.drain()
        keep = conn.drain()
        conn.respond(answer.status, answer.body, answer.content_type, answer.headers)
        return keep
    except (ClientGone, BrokenPipeError, ConnectionResetError):
        return False
    except Exception as exc:
        begun = conn.hijacked or conn.h11.our_state is not h11.SEND_RESPONSE
        if begun or not isinstance(exc, (PortiqueError, OSError)):
            import traceback

            print(f"portique serve: {method} {path}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
        if begun:
            return False  # the answer had begun: all we can do is close
        status, message = status_and_message(exc)
        keep = not isinstance(exc, BodyTooLarge) and conn.drain()
        if status == 304:
            conn.respond(304, b"", "", [])
        else:
            conn.respond(status, error_body(message), "application/json", [])
        return keep
