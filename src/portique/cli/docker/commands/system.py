"""`portique system df|prune|info`"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="system_command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("df")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--format", default=None)
    p = sub.add_parser("prune")
    p.add_argument(
        "-a", "--all", action="store_true", help="remove all unused images, not just dangling ones"
    )
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="prune anonymous volumes")
    p.add_argument("--filter", action="append", default=[])
    p = sub.add_parser("info")
    p.add_argument("-f", "--format", default=None)


def _pct(part: int, whole: int) -> str:
    return f" ({part * 100 // whole}%)" if whole else ""


def _df(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import format_rows
    from portique.engine import system
    from portique.units import human_size

    usage = system.disk_usage(eng)
    records: list[dict[str, Any]] = [
        {
            "Type": kind,
            "TotalCount": str(u.total),
            "Active": str(u.active),
            "Size": human_size(u.size),
            "Reclaimable": human_size(u.reclaimable) + _pct(u.reclaimable, u.size),
        }
        for kind, u in (
            ("Images", usage.images),
            ("Containers", usage.containers),
            ("Local Volumes", usage.volumes),
        )
    ]
    records.append(
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}
    )
    default = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    headers = {
        "Type": "TYPE",
        "TotalCount": "TOTAL",
        "Active": "ACTIVE",
        "Size": "SIZE",
        "Reclaimable": "RECLAIMABLE",
    }
    sys.stdout.write(
        format_rows(
            args.format,
            records,
            default=default,
            headers=headers,
            context="*formatter.diskUsageContext",
        )
    )
    return 0


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.container import confirm
    from portique.engine import system
    from portique.units import human_size

    if not args.force:
        what = [
            "all stopped containers",
            "all dangling images"
            if not args.all
            else "all images without at least one container associated to them",
        ]
        if args.volumes:
            what.insert(1, "all anonymous volumes not used by at least one container")
        text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in what)
        if not confirm(text.rstrip("\n") + "\n"):
            return 0
    report = system.prune(eng, all=args.all, volumes=args.volumes)
    if report.containers:
        print("Deleted Containers:")
        print("\n".join(report.containers))
        print()
    if report.volumes:
        print("Deleted Volumes:")
        print("\n".join(report.volumes))
        print()
    if report.images:
        print("Deleted Images:")
        for d in report.images:
            print(f"deleted: {d}")
        print()
    print(f"Total reclaimed space: {human_size(report.reclaimed)}")
    return 0


def run(eng: Engine, args: argparse.Namespace) -> int:
    if args.system_command == "df":
        return _df(eng, args)
    if args.system_command == "prune":
        return _prune(eng, args)
    from portique.cli.docker.commands import info

    return info.run(eng, args)
