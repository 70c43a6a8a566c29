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
    from portique.engine import containers, db, volumes
    from portique.engine.state import has_monitor
    from portique.units import human_size

    conn = eng.db
    usage = eng.images.disk_usage()
    rows = containers.list_all(eng)
    c_sizes = {r.id: containers.container_size(eng, r.id) for r in rows}
    c_active = [r for r in rows if has_monitor(r.status)]
    c_total = sum(c_sizes.values())
    c_reclaim = sum(s for cid, s in c_sizes.items() if cid not in {r.id for r in c_active})
    vols = db.list_volumes(conn)
    used = {v.name for r in rows for v in db.container_volumes(conn, r.id)}
    v_sizes = {v.name: volumes.volume_size(v.mountpoint) for v in vols}
    v_total = sum(v_sizes.values())
    v_reclaim = sum(s for n, s in v_sizes.items() if n not in used)
    records: list[dict[str, Any]] = [
        {
            "Type": "Images",
            "TotalCount": str(usage["images"]),
            "Active": str(usage["active"]),
            "Size": human_size(usage["size"]),
            "Reclaimable": human_size(usage["reclaimable"])
            + _pct(usage["reclaimable"], usage["size"]),
        },
        {
            "Type": "Containers",
            "TotalCount": str(len(rows)),
            "Active": str(len(c_active)),
            "Size": human_size(c_total),
            "Reclaimable": human_size(c_reclaim) + _pct(c_reclaim, c_total),
        },
        {
            "Type": "Local Volumes",
            "TotalCount": str(len(vols)),
            "Active": str(len(used)),
            "Size": human_size(v_total),
            "Reclaimable": human_size(v_reclaim) + _pct(v_reclaim, v_total),
        },
        {
            "Type": "Build Cache",
            "TotalCount": "0",
            "Active": "0",
            "Size": "0B",
            "Reclaimable": "0B",
        },
    ]
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
    from portique.engine import containers, volumes
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
    from portique.engine.network import repair_leftovers

    # Interrupted operations first (their mounts, runtime containers, files,
    # stale rows), so that what they held can be pruned below.
    eng.recover(images=True, prune=True, warn=True)
    repair_leftovers(eng, every=0)
    removed = containers.prune(eng)
    if removed:
        print("Deleted Containers:")
        print("\n".join(removed))
        print()
    if args.volumes:
        vols = volumes.prune_volumes(eng)
        if vols:
            print("Deleted Volumes:")
            print("\n".join(vols))
            print()
    deleted, reclaimed = eng.images.prune(all=args.all)
    if deleted:
        print("Deleted Images:")
        for d in deleted:
            print(f"deleted: {d}")
        print()
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def run(eng: Engine, args: argparse.Namespace) -> int:
    if args.system_command == "df":
        return _df(eng, args)
    if args.system_command == "prune":
        return _prune(eng, args)
    from portique.cli.docker.commands import info

    return info.run(eng, args)
