"""Docker-style output: tables and `--format` templates.

Shared by every listing verb (`images`, `ps`, `volume ls`, `inspect`, ...). It
reproduces what the docker CLI prints so that scripts written against Docker keep
working: text/tabwriter's column layout (minwidth 10, padding 3) and Go's
text/template with Docker's functions (cli/gotemplate, through
cli/docker/templates.py). Sizes and durations ("1.24MB", "2 hours ago") are
go-units' words, in the base module portique/units.py.

A listing verb builds one `dict[str, Any]` per row (keys are Docker's template
field names: ID, Repository, ...) and calls `format_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Record", "format_rows", "render_table"]


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
