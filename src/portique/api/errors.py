"""Exceptions -> Docker's error answers: `{"message": "..."}` and a status.

The message is the CLI's text for the same error (str of the PortiqueError,
hint included); a missing object is Docker's "No such container: x".
"""

from __future__ import annotations

import errno
import json
import sqlite3

from portique.errors import NoSuchObject, PortiqueError

__all__ = ["error_body", "status_and_message"]


def status_and_message(exc: BaseException) -> tuple[int, str]:
    import h11

    if isinstance(exc, h11.RemoteProtocolError):
        return exc.error_status_hint, f"malformed HTTP request: {exc}"
    if isinstance(exc, NoSuchObject):
        return 404, exc.docker_text()
    if isinstance(exc, PortiqueError):
        return exc.http_status, str(exc)
    if isinstance(exc, sqlite3.Error):
        return 500, f"state database: {exc}"
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOENT:
            return 404, str(exc.strerror or exc)
        return 500, str(exc)
    return 500, f"internal error: {type(exc).__name__}: {exc}"


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode() + b"\n"
