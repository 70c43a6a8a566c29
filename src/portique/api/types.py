"""What a route handler sees and returns (see the package docstring)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from portique.errors import InvalidArgument, PortiqueError

if TYPE_CHECKING:
    import socket

    from portique.api.http import Connection, Stream
    from portique.engine.engine import Engine

MAX_JSON_BODY = 4 << 20  # a create body is a few kB; this bounds a hostile one

__all__ = [
    "MAX_JSON_BODY",
    "BodyTooLarge",
    "Handler",
    "NotModified",
    "Request",
    "Response",
    "Route",
    "bool_value",
    "json_line",
    "json_response",
]


class NotModified(PortiqueError):
    """304: the container is already started (or already stopped)."""

    http_status = 304


class BodyTooLarge(PortiqueError):
    http_status = 413


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value).encode() + b"\n")


def json_line(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


def bool_value(text: str) -> bool:
    """Docker's reading of a boolean query parameter."""
    return text.strip().lower() not in ("", "0", "no", "false", "none")


@dataclass
class Request:
    method: str
    path: str  # without the /v1.NN prefix
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    eng: Engine
    conn: Connection
    api_version: tuple[int, int]
    params: dict[str, str] = field(default_factory=dict)

    # -- the query ---------------------------------------------------------------

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def has(self, name: str) -> bool:
        return name in self.query

    def flag(self, name: str, default: bool = False) -> bool:
        return bool_value(self.arg(name)) if name in self.query else default

    def int_arg(self, name: str, default: int) -> int:
        text = self.arg(name)
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            raise InvalidArgument(
                f'invalid value for "{name}": strconv.Atoi: parsing "{text}": invalid syntax'
            ) from None

    def filters(self) -> dict[str, list[str]]:
        """The `filters` query parameter: {"key": ["v", ...]} or Docker's older
        {"key": {"v": true}}."""
        text = self.arg("filters")
        if not text:
            return {}
        try:
            raw = json.loads(text)
        except ValueError:
            raise InvalidArgument(f"invalid filter: {text!r} is not JSON") from None
        if not isinstance(raw, dict):
            raise InvalidArgument("invalid filter: not a JSON object")
        out: dict[str, list[str]] = {}
        for key, values in raw.items():
            if isinstance(values, dict):
                out[key] = [str(v) for v, on in values.items() if on]
            elif isinstance(values, list):
                out[key] = [str(v) for v in values]
            elif isinstance(values, str):
                out[key] = [values]
            else:
                raise InvalidArgument(f"invalid filter '{key}': values must be strings")
        return out

    # -- the body ----------------------------------------------------------------

    def body(self, limit: int = MAX_JSON_BODY) -> bytes:
        return self.conn.read_body(limit)

    def json(self, limit: int = MAX_JSON_BODY, *, empty_ok: bool = True) -> dict[str, Any]:
        """The body as a JSON object ({} when empty and `empty_ok`)."""
        data = self.body(limit)
        if not data.strip():
            if empty_ok:
                return {}
            raise InvalidArgument("request body is empty: a JSON object is required")
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"invalid JSON in request body: {exc}") from None
        if not isinstance(value, dict):
            raise InvalidArgument("invalid JSON in request body: expected an object")
        return value

    def body_stream(self) -> BinaryIO:
        """A reader of the body as it arrives (no bound: the handler's)."""
        return self.conn.body_reader()

    # -- answers that are not one Response ------------------------------------------

    def stream(self, status: int = 200, content_type: str = "application/json") -> Stream:
        return self.conn.start_stream(status, content_type)

    def hijack(self, content_type: str) -> tuple[socket.socket, bytes]:
        """Take the connection over (attach, exec start): (socket, bytes already read)."""
        return self.conn.hijack(content_type)


Handler = Callable[[Request], "Response | None"]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler


class StreamFile:
    """A binary file over a chunked response stream (`Request.stream`): tar
    writes small blocks, gathered here into 64 KiB chunks."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.buf = bytearray()

    def write(self, data: bytes) -> int:
        self.buf += data
        if len(self.buf) >= 1 << 16:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            self.stream.write(bytes(self.buf))
            self.buf.clear()

    def tell(self) -> int:
        raise OSError("not seekable")
