"""Docker-style output: tables, `--format` templates, human sizes and times.

Shared by every listing verb (`images`, `ps`, `volume ls`, `inspect`, ...). It
reproduces what the docker CLI prints so that scripts written against Docker keep
working: go-units' sizes ("1.24MB", decimal units, three significant digits), its
durations ("2 hours ago"), text/tabwriter's column layout (minwidth 10, padding 3)
and Go's text/template with Docker's functions (cli/gotemplate, through
cli/docker/templates.py).

A listing verb builds one `dict[str, Any]` per row (keys are Docker's template
field names: ID, Repository, ...) and calls `format_rows`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "Record",
    "format_rows",
    "human_duration",
    "human_size",
    "render_table",
    "short_id",
    "time_ago",
]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


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


def render_table(rows: Sequence[Sequence[str]], *, minwidth: int = 10, padding: int = 3) -> str:
    """Lay out rows as Go's tabwriter does for Docker (minwidth 10, padding 3).

    Every cell but the last of its line is padded to its column's width; the
    last cell is written as is, so lines carry no trailing blanks.
    """
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            w = max(len(cell) + padding, minwidth)
            if i == len(widths):
                widths.append(w)
            elif w > widths[i]:
                widths[i] = w
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "".join(line + "\n" for line in lines)


class Record(dict[str, Any]):
    """A listing row: Docker's template field names to their text."""


def format_rows(
    fmt: str | None,
    rows: Sequence[Mapping[str, Any]],
    *,
    default: str,
    headers: Mapping[str, str],
    context: str = "*formatter.Context",
    labels: Sequence[Mapping[str, str]] | None = None,
    parse_prefix: str = "template parsing error: ",
) -> str:
    """Render `rows` as Docker's `--format` would (docker/cli's formatter.Context).

    `default` is the verb's built-in table template ("table {{.ID}}\\t..."),
    `headers` maps a field name to its column title, `context` is the Go type
    docker/cli gives the row (it shows in errors), `labels` (one mapping per
    row) adds the `Label "name"` method. `fmt` may be None or "table" (the
    default table), "json" (`{{json .}}`: one JSON object per line), "table
    TEMPLATE" or any other template (one line per row, no header).
    """
    from portique.cli.docker import templates

    if not fmt or fmt == "table":
        fmt = default
    text = "{{json .}}" if fmt == "json" else fmt
    is_table = text.startswith("table")
    if is_table:
        text = text[len("table") :]
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tmpl = templates.parse(text, prefix=parse_prefix)
    contexts = [
        templates.context(context, row, labels[i] if labels is not None else None)
        for i, row in enumerate(rows)
    ]
    return templates.rows_text(tmpl, contexts, table=is_table, headers=headers)
