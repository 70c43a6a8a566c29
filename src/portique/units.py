"""Docker's human units: sizes, durations and short ids, as go-units writes them.

A base module (no imports beyond the standard library) so that every layer
may say "1.24MB" or "2 hours ago" the way the docker CLI does: the engine's
presenter (ps STATUS, stats), the faces' tables and progress bars.
"""

from __future__ import annotations

import math
import time

__all__ = ["binary_size", "human_duration", "human_size", "short_id", "time_ago"]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units, `precision` significant digits."""
    size = float(size)
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    text = f"{size:.{precision}g}"
    if "e" in text and i < len(_UNITS) - 1:
        # 999.95 rounds up to "1e+03": say "1kB" as a reader would.
        return f"{size / 1000.0:.{precision}g}{_UNITS[i + 1]}"
    return f"{text}{_UNITS[i]}"


def binary_size(size: float) -> str:
    """go-units BytesSize: binary units, four significant digits ("1.5MiB")."""
    i = 0
    while size >= 1024 and i < len(_BINARY_UNITS) - 1:
        size /= 1024
        i += 1
    return f"{size:.4g}{_BINARY_UNITS[i]}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 weeks"."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = math.floor(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def time_ago(timestamp: float, now: float | None = None) -> str:
    """ "2 hours ago" for a Unix timestamp; Docker's CREATED column."""
    if timestamp <= 0:
        return "N/A"
    now = time.time() if now is None else now
    return f"{human_duration(max(0.0, now - timestamp))} ago"


def short_id(ident: str, *, no_trunc: bool = False) -> str:
    """Docker's short id: the first 12 hex digits, without the algorithm prefix."""
    if no_trunc:
        return ident
    _, _, hexpart = ident.rpartition(":")
    return hexpart[:12]
