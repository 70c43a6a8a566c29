"""The API versions served, and the headers every answer carries (as dockerd)."""

from __future__ import annotations

from portique import API_VERSION as _ANNOUNCED

# What /_ping and /version announce (portique.API_VERSION, as `portique version`).
API_VERSION = (int(_ANNOUNCED.split(".")[0]), int(_ANNOUNCED.split(".")[1]))
MIN_API_VERSION = (1, 24)


def version_text(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


STANDARD_HEADERS: list[tuple[bytes, bytes]] = [
    (b"Server", b"portique"),
    (b"Api-Version", version_text(API_VERSION).encode()),
    (b"Docker-Experimental", b"false"),
    (b"Ostype", b"linux"),
]
