"""json.loads and compact json.dumps through json's C accelerator alone.

`import json` costs `portique-runtime` ~1 ms and pulls in `re` (its
decoder's whitespace and number patterns), and with `re` `enum`: ~4 ms of
every start, for documents json's C half (`_json`, a shared library with
no Python imports) parses and writes by itself. Here the same scanner and
encoder json uses are driven with json's own defaults, so a document gives
the very value or text json gives. Anything off the plain path (bytes that
are not UTF-8, a BOM, an error of any kind, a value json's encoder would
refuse, indentation) is handed to json itself, which answers or raises
exactly as it always does: only the failing call pays for importing it.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE's characters
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """What JSONDecoder() gives the C scanner: json.loads's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_scan: Callable[[str, int], tuple[Any, int]] | None = None


class _Refused(Exception):
    """A value the C encoder hands back (json.dumps would raise TypeError)."""


def _refuse(obj: object) -> object:
    raise _Refused


def loads(data: str | bytes) -> Any:
    """json.loads(data)."""
    global _scan
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        if text.startswith("\ufeff"):
            raise ValueError("BOM")  # json's own error says so
        if _scan is None:
            _scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
        start = len(text) - len(text.lstrip(_WHITESPACE))
        obj, end = _scan(text, start)
        if text[end:].strip(_WHITESPACE):
            raise ValueError("extra data")
        return obj
    except (StopIteration, ValueError, TypeError, SystemError):
        # SystemError: the scanner raises json.decoder's JSONDecodeError, and
        # while json is not imported that fails as a SystemError.
        import json

        return json.loads(data)


def dumps(obj: Any, *, separators: tuple[str, str] = (", ", ": ")) -> str:
    """json.dumps(obj, separators=separators) (ensure_ascii, check_circular,
    allow_nan: json's defaults)."""
    item_sep, key_sep = separators
    try:
        encode = _json.make_encoder(
            {}, _refuse, _json.encode_basestring_ascii, None, key_sep, item_sep, False, False, True
        )
        return "".join(encode(obj, 0))
    except (ValueError, TypeError, RecursionError, _Refused):
        import json

        return json.dumps(obj, separators=separators)


__all__ = ["dumps", "loads"]
