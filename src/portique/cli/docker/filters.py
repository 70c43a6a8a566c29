"""`--filter key=value` flags, as the docker CLI reads them, into Docker's filters map.

The engine checks the keys (engine/filters.py); this is only the translation
a face owes: the API gets the same map as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable

from portique.errors import InvalidArgument


def from_flags(items: Iterable[str]) -> dict[str, list[str]]:
    """`["label=a=1", "dangling=true"]` -> `{"label": ["a=1"], "dangling": ["true"]}`."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        out.setdefault(key.strip().lower(), []).append(value)
    return out
