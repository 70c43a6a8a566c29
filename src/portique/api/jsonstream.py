"""Docker's JSON message stream (pull, push, build, load, import): one JSON
object per line, as the docker CLI's jsonmessage reader expects.

    with JSONMessages(req) as out:      # the answer starts at the first message
        out.send({"status": "Pulling fs layer", "id": "abc", "progressDetail": {}})
        out.progress(event)             # an image/pull.py ProgressEvent
    return out.response()

An error before the first message is an ordinary error answer (its status
and `{"message": ...}`, as dockerd answers a pull of an unknown image); once
the stream has begun, it is the last message, `{"errorDetail": {"message":
...}, "error": ...}`, which the CLI prints and exits 1 on. Messages may come
from several threads (pull's and push's downloads): one lock orders them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from portique.api.types import Response, json_line
from portique.errors import PortiqueError

if TYPE_CHECKING:
    from types import TracebackType

    from portique.api.http import Stream
    from portique.api.types import Request
    from portique.image.pull import ProgressEvent

# Statuses that carry a byte count, shown with Docker's progress bar.
_COUNTED = frozenset({"Downloading", "Extracting", "Pushing", "Loading layer"})

__all__ = ["JSONMessages", "progress_message"]


def _bar(current: int, total: int) -> str:
    from portique.units import human_size

    width = 50
    filled = min(width, width * current // total) if total > 0 else 0
    bar = "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (width - filled)
    return f"[{bar}] {human_size(current)}/{human_size(total)}"


def progress_message(event: ProgressEvent) -> dict[str, Any]:
    """One ProgressEvent as Docker's JSONMessage."""
    status = event.status
    if not event.id:
        # "latest: Pulling from library/busybox": Docker sends the tag as the id.
        head, sep, rest = status.partition(": Pulling from ")
        if sep and head and " " not in head:
            return {"status": f"Pulling from {rest}", "id": head}
        return {"status": status}
    msg: dict[str, Any] = {"status": status, "progressDetail": {}, "id": event.id}
    if status in _COUNTED and event.total > 0:
        msg["progressDetail"] = {"current": event.current, "total": event.total}
        msg["progress"] = _bar(event.current, event.total)
    return msg


class JSONMessages:
    """A JSON message stream begun lazily (see the module docstring)."""

    def __init__(self, req: Request) -> None:
        self.req = req
        self._out: Stream | None = None
        self._lock = threading.Lock()
        self.failed = False

    @property
    def started(self) -> bool:
        return self._out is not None

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            if self._out is None:
                self._out = self.req.stream(200, "application/json")
            self._out.write(json_line(message))

    def progress(self, event: ProgressEvent) -> None:
        self.send(progress_message(event))

    def status(self, text: str) -> None:
        self.send({"status": text})

    def text(self, text: str) -> None:
        """A build's or load's output: `{"stream": "..."}`."""
        if text:
            self.send({"stream": text})

    def error(self, message: str) -> None:
        self.failed = True
        self.send({"errorDetail": {"message": message}, "error": message})

    def __enter__(self) -> JSONMessages:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not self.started:
            return False  # before any message: the ordinary error answer
        if isinstance(exc, PortiqueError):
            self.error(str(exc))
            return True
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
            self.error(f"{exc.strerror or exc}")
            return True
        return False  # the client went away, or a bug: the connection closes

    def response(self) -> Response | None:
        """What the handler returns: None once streaming (the stream ends after
        the handler), else an empty JSON answer."""
        if self.started:
            return None
        return Response(200, b"", "application/json")
