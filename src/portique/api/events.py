"""`GET /events`: the engine's event record (engine/events.py, what `portique
events` reads), streamed as Docker's JSON messages.

`since` and `until` are Unix times (`1700000000` or `1700000000.123456789`,
as the docker CLI sends them; an RFC 3339 time or a duration is accepted
too, as `portique events` takes them); `filters` is Docker's map (container,
image, network, volume, type, event, label, scope). Docker's rule: with no
`until`, or one ahead, the stream follows new events; it ends at `until`, or
when the client goes away (checked at each poll of the record, so a worker
never outlives its client).
"""

from __future__ import annotations

import select
import socket
from typing import TYPE_CHECKING

from portique.api.types import Request, Response, Route, json_line
from portique.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ROUTES", "parse_time"]


def parse_time(name: str, text: str) -> int | None:
    """A `since`/`until` value in nanoseconds since the epoch; None when empty."""
    text = text.strip()
    if not text:
        return None
    secs, dot, frac = text.partition(".")
    if secs.lstrip("-").isdigit() and (not dot or (frac.isdigit() and len(frac) <= 9)):
        return int(secs) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    from portique.engine.logs import parse_since

    try:
        return parse_since(text)
    except InvalidArgument:
        raise InvalidArgument(
            f"invalid {name} {text!r}: use a Unix time (seconds[.nanoseconds]), "
            "an RFC 3339 time or a duration"
        ) from None


def _client_gone(sock: socket.socket) -> Callable[[], bool]:
    """True once the client has closed its end."""
    from portique.api.hangup import client_gone

    def gone() -> bool:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and client_gone(sock)

    return gone


def events(req: Request) -> Response | None:
    from portique.engine import events as ev

    since = parse_time("since", req.arg("since"))
    until = parse_time("until", req.arg("until"))
    filters = req.filters()
    ev.check_filters(filters)  # a bad filter is a 400, before the stream begins
    if since is not None and until is not None and until < since:
        raise InvalidArgument("`since` time cannot be after `until` time")
    stream = ev.read(req.eng, since, until, filters, stop=_client_gone(req.conn.sock))
    out = req.stream(200, "application/json")  # headers now: clients wait for them
    for event in stream:
        out.write(json_line(event.to_api()))
    return None


ROUTES = [Route("GET", "/events", events)]
