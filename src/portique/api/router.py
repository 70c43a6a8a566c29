"""Routes: every module in MODULES gives its ROUTES; paths match with or
without the `/v1.NN` prefix; the API version is checked here.

To add a module: write `portique/api/NAME.py` with `ROUTES` and add "NAME"
to MODULES (one line). See the package docstring.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from portique.api.types import Handler, Route
from portique.api.versions import API_VERSION, MIN_API_VERSION, version_text
from portique.errors import InvalidArgument, NotFound

# The route modules. One line each.
MODULES: tuple[str, ...] = (
    "system_base",
    "containers",
    "container_io",
    "exec",
    # apiobj: images, build, networks, volumes, system df and auth, events
    "images",
    "build",
    "networks",
    "volumes",
    "system_objects",
    "events",
)

_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")

__all__ = ["API_VERSION", "MIN_API_VERSION", "MODULES", "Router", "split_version", "version_text"]


def split_version(path: str) -> tuple[tuple[int, int], str]:
    """(API version asked for, path without the prefix). No prefix: the
    announced version. Outside 1.24 .. 1.41: Docker's 400."""
    m = _VERSIONED.match(path)
    if not m:
        return API_VERSION, path
    v = (int(m.group(1)), int(m.group(2)))
    if v > API_VERSION:
        raise InvalidArgument(
            f"client version {version_text(v)} is too new. Maximum supported API version is "
            f"{version_text(API_VERSION)}"
        )
    if v < MIN_API_VERSION:
        raise InvalidArgument(
            f"client version {version_text(v)} is too old. Minimum supported API version is "
            f"{version_text(MIN_API_VERSION)}, please upgrade your client to a newer version"
        )
    return v, m.group(3)


@dataclass(frozen=True)
class _Compiled:
    method: str
    regex: re.Pattern[str]
    handler: Handler


def _compile(pattern: str) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\{[a-z_]+(?::path)?\})", pattern):
        if part.startswith("{"):
            name, _, kind = part[1:-1].partition(":")
            out += f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"
        else:
            out += re.escape(part)
    return re.compile(f"^{out}/?$")


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = [_Compiled(r.method, _compile(r.pattern), r.handler) for r in routes]

    @classmethod
    def from_modules(cls, modules: tuple[str, ...] = MODULES) -> Router:
        routes: list[Route] = []
        for name in modules:
            mod = importlib.import_module(f"portique.api.{name}")
            routes += mod.ROUTES
        return cls(routes)

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters; 404 "page not found" (Docker's
        words) for an unknown path, 405 for a known path with another method."""
        matches = [(r, m) for r in self.routes if (m := r.regex.match(path)) is not None]
        for want in (method, "GET" if method == "HEAD" else None):
            for r, m in matches:
                if r.method == want:
                    return r.handler, m.groupdict()
        known = bool(matches)
        if known:
            raise MethodNotAllowed(f"method {method} not allowed for {path}")
        raise NotFound("page not found")


class MethodNotAllowed(InvalidArgument):
    http_status = 405
