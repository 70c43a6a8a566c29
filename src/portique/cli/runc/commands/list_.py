"""`list [-q] [--format table|json]`: the containers under --root."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from portique.cli.runc.commands._common import print_json
from portique.cli.runc.context import Context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", choices=("table", "json"), default="table")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the ids")


def owner_name(path: Path) -> str:
    """The user owning a container's state directory, as runc's list shows it."""
    import pwd

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def format_table(rows: list[list[str]]) -> str:
    """Columns as Go's tabwriter(minwidth=12, tabwidth=1, padding=3) aligns them."""
    if not rows:
        return ""
    widths = [max(12, max(len(row[i]) for row in rows) + 3) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("".join(cells) + row[-1])
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, ctx: Context) -> int:
    states = sorted(ctx.runtime().list(), key=lambda s: s.id)
    if args.quiet:
        sys.stdout.write("".join(f"{s.id}\n" for s in states))
        return 0
    entries: list[dict[str, Any]] = []
    for state in states:
        entry = state.to_runc_json()
        if not entry.get("owner"):
            entry["owner"] = owner_name(Path(ctx.root) / state.id)
        entries.append(entry)
    if args.format == "json":
        print_json(entries, indent=None)
        return 0
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    rows += [
        [
            str(e["id"]),
            str(e.get("pid", 0)),
            str(e["status"]),
            str(e.get("bundle", "")),
            str(e.get("created", "")),
            str(e.get("owner", "")),
        ]
        for e in entries
    ]
    sys.stdout.write(format_table(rows))
    return 0
