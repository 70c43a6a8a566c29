"""`portique ps` (also `container ls`, `container ps`, `container list`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--all", action="store_true", help="show all containers")
    parser.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    parser.add_argument("-f", "--filter", action="append", default=[], help="filter output")
    parser.add_argument("--format", default=None, help="format output using a Go template")
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument("-n", "--last", type=int, default=-1, help="show n last created containers")
    parser.add_argument(
        "-l", "--latest", action="store_true", help="show the latest created container"
    )
    parser.add_argument("-s", "--size", action="store_true", help="display total file sizes")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import format_rows
    from portique.engine import containers, present
    from portique.engine.network import repair_leftovers
    from portique.engine.state import has_monitor
    from portique.units import human_size

    filters = present.parse_filters(args.filter)
    if args.format:
        _check_format(args.format)
    repair_leftovers(eng)
    rows = containers.list_all(eng)
    by_ref = {r.id: r for r in rows} | {r.name: r for r in rows} | {r.id[:12]: r for r in rows}
    last = 1 if args.latest else args.last
    show_all = args.all or last > 0 or "status" in filters or "exited" in filters
    out = []
    for r in rows:
        if not show_all and not has_monitor(r.status):
            continue
        if not present.matches(r, filters, by_ref):
            continue
        out.append(r)
    if last > 0:
        out = out[:last]
    if args.quiet:
        for r in out:
            print(r.id if args.no_trunc else r.id[:12])
        return 0
    records = []
    for r in out:
        size = human_size(containers.container_size(eng, r.id)) if args.size else ""
        record = present.ps_row(r, no_trunc=args.no_trunc, size=size)
        mounts = r.config.get("MountPoints") or []
        record["LocalVolumes"] = str(sum(1 for m in mounts if m.get("Type") == "volume"))
        records.append(record)
    default = present.PS_DEFAULT + ("\t{{.Size}}" if args.size else "")
    labels = [dict(r.config["Config"].get("Labels") or {}) for r in out]
    sys.stdout.write(
        format_rows(
            args.format,
            records,
            default=default,
            headers=_headers(),
            context=CONTEXT,
            labels=labels,
        )
    )
    return 0


CONTEXT = "*formatter.ContainerContext"


def _headers() -> dict[str, str]:
    from portique.engine import present

    return {**present.PS_HEADERS, "LocalVolumes": "LOCAL VOLUMES"}


def _check_format(fmt: str) -> None:
    """Docker checks a --format before listing: on an empty row, so that a bad
    field is an error even when no container is listed."""
    from portique.cli.docker import templates

    tmpl = templates.parse(fmt, prefix="failed to parse template: ")
    empty = templates.context(CONTEXT, dict.fromkeys(_headers(), ""), {})
    templates.execute(tmpl, empty, prefix="failed to execute template: ")
