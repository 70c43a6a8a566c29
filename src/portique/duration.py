"""Go durations ("300ms", "1.5h", "2h45m"), the way Go's time.ParseDuration reads them.

Docker and runc take durations in Go's syntax everywhere (HEALTHCHECK
--interval, --since/--until, `runc events --interval`), so this is the one
parser of it: an optional sign, then one or more decimal numbers each with a
unit (ns, us, µs, ms, s, m, h); "0" alone needs no unit. The result is whole
nanoseconds and fits Go's int64, as there. What a caller refuses beyond that
(a negative interval, say) is the caller's rule.
"""

from __future__ import annotations

from typing import Final

from portique.errors import InvalidArgument

NANOSECONDS: Final = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # µ, MICRO SIGN
    "\u03bcs": 1_000,  # μ, GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX: Final = 1 << 63  # |int64 min|; a positive duration is at most this minus one
_DIGITS: Final = frozenset("0123456789")


class InvalidDuration(InvalidArgument):
    """Text that is not a Go duration."""


def parse_duration(text: str) -> int:
    """Nanoseconds in the Go duration `text`; InvalidDuration names what is wrong."""
    s = text
    negative = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise InvalidDuration(f"invalid duration {text!r}")
    total = 0
    while s:
        whole, s = _leading_digits(s)
        fraction = ""
        if s[:1] == ".":
            fraction, s = _leading_digits(s[1:])
        if not whole and not fraction:
            raise InvalidDuration(f"invalid duration {text!r}")  # "." or a unit alone
        end = next((i for i, c in enumerate(s) if c == "." or c in _DIGITS), len(s))
        unit, s = s[:end], s[end:]
        if not unit:
            raise InvalidDuration(f"invalid duration {text!r}: missing unit")
        scale = NANOSECONDS.get(unit)
        if scale is None:
            raise InvalidDuration(f"invalid duration {text!r}: unknown unit {unit[:20]!r}")
        significant = whole.lstrip("0")
        if len(significant) > 19 or int(significant or "0") * scale > _MAX:
            raise InvalidDuration(f"invalid duration {text!r}: out of range")
        total += int(significant or "0") * scale + _fraction_ns(fraction, scale)
        if total > _MAX:
            raise InvalidDuration(f"invalid duration {text!r}: out of range")
    if not negative and total == _MAX:
        raise InvalidDuration(f"invalid duration {text!r}: out of range")
    return -total if negative else total


def _fraction_ns(digits: str, scale: int) -> int:
    """As Go: the fraction's digits while they fit an int64, scaled in floating point."""
    value, divisor = 0, 1.0
    for c in digits:
        if value > (_MAX - 1) // 10:
            break  # the digits beyond int64 precision are dropped
        value = value * 10 + ord(c) - 48
        divisor *= 10
    return int(value * (scale / divisor))


def parse_seconds(text: str) -> float:
    """The Go duration `text` in seconds."""
    return parse_duration(text) / 1e9


def _leading_digits(s: str) -> tuple[str, str]:
    end = next((i for i, c in enumerate(s) if c not in _DIGITS), len(s))
    return s[:end], s[end:]


__all__ = ["NANOSECONDS", "InvalidDuration", "parse_duration", "parse_seconds"]
