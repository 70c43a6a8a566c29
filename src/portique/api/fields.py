"""Typed reads of a hostile JSON request body, refusing what the swagger does
not define: each error is a 400 naming the field and what was expected.

    body = Fields(req.json(), "network create", known=("Name", "Driver", ...))
    name = body.text("Name", required=True)
    labels = body.text_map("Labels")
    internal = body.boolean("Internal")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portique.errors import InvalidArgument

__all__ = ["Fields"]

_TYPE = {str: "a string", bool: "a boolean", int: "an integer", dict: "an object", list: "a list"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    for kind, text in _TYPE.items():
        if isinstance(value, kind):
            return text
    return "null"


class Fields:
    def __init__(self, doc: Mapping[str, Any], where: str, *, known: Iterable[str]) -> None:
        if not isinstance(doc, Mapping):
            raise InvalidArgument(f"{where}: expected a JSON object")
        self.doc = doc
        self.where = where
        allowed = set(known)
        unknown = sorted(k for k in doc if k not in allowed)
        if unknown:
            raise InvalidArgument(f"{where}: unknown field {unknown[0]!r}")

    def _get(self, name: str, kind: type, required: bool) -> Any:
        value = self.doc.get(name)
        if value is None:
            if required:
                raise InvalidArgument(f"{self.where}: {name} is required")
            return None
        # JSON true is not an integer here, though Python's bool is an int.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidArgument(
                f"{self.where}: {name} must be {_TYPE[kind]}, not {_json_type(value)}"
            )
        return value

    def text(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = self._get(name, str, required)
        if required and not value:
            raise InvalidArgument(f"{self.where}: {name} is required")
        return default if value is None else str(value)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._get(name, bool, False)
        return default if value is None else bool(value)

    def integer(self, name: str, default: int = 0) -> int:
        value = self._get(name, int, False)
        return default if value is None else int(value)

    def obj(self, name: str) -> dict[str, Any]:
        value = self._get(name, dict, False)
        return dict(value) if value is not None else {}

    def array(self, name: str) -> list[Any]:
        value = self._get(name, list, False)
        return list(value) if value is not None else []

    def text_map(self, name: str) -> dict[str, str]:
        out = self.obj(name)
        for key, value in out.items():
            if not isinstance(value, str):
                raise InvalidArgument(f"{self.where}: {name}[{key!r}] must be a string")
        return out

    def text_list(self, name: str) -> list[str]:
        out = self.array(name)
        for i, value in enumerate(out):
            if not isinstance(value, str):
                raise InvalidArgument(f"{self.where}: {name}[{i}] must be a string")
        return out
