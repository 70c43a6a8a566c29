"""`/_ping`, `/version`, `/info`: what a client asks first."""

from __future__ import annotations

from portique.api.types import Request, Response, Route, json_response
from portique.api.versions import MIN_API_VERSION, version_text

__all__ = ["ROUTES"]


def ping(req: Request) -> Response:
    # Builder-Version 1: the classic builder (POST /build with the JSON stream);
    # the docker CLI then does not try BuildKit's session.
    headers = [
        ("Builder-Version", "1"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ]
    return Response(200, b"OK", "text/plain; charset=utf-8", headers)


def version(req: Request) -> Response:
    from portique.engine import system

    return json_response(system.server_version(version_text(MIN_API_VERSION)))


def info(req: Request) -> Response:
    from portique.engine import system

    return json_response(system.info(req.eng))


ROUTES = [
    Route("GET", "/_ping", ping),
    Route("HEAD", "/_ping", ping),
    Route("GET", "/version", version),
    Route("GET", "/info", info),
]
