"""`portique system df|prune|info|events|migrate`"""

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
    sub.add_parser("migrate")
    p = sub.add_parser("info")
    p.add_argument("-f", "--format", default=None)
    from portique.cli.docker.commands import events

    events.add_arguments(sub.add_parser("events"))


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
    bc = usage.build_cache
    records.append(
        {
            "Type": "Build Cache",
            "TotalCount": str(bc.total),
            "Active": str(bc.active),
            "Size": human_size(bc.size),
            "Reclaimable": human_size(bc.reclaimable),
        }
    )
    if args.verbose and not args.format:
        return _df_verbose(eng)
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


_DF_IMAGES = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    "\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
)
_DF_CONTAINERS = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}"
    "\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
)
_DF_VOLUMES = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
_DF_CACHE = (
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}"
    "\t{{.UsageCount}}\t{{.Shared}}"
)
_DF_HEADERS = {
    "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
    "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
    "Containers": "CONTAINERS",
}  # fmt: skip


def _df_verbose(eng: Engine) -> int:
    """`system df -v`: Docker's four sections, from GET /system/df's shape."""
    from portique.cli.docker.commands.image import image_rows
    from portique.cli.docker.format import Record, format_rows
    from portique.engine import system
    from portique.engine.images import created_timestamp
    from portique.units import human_size, time_ago

    data = system.df(eng)
    shared = {s["Id"]: s for s in data["Images"]}
    rows = []
    for row in image_rows(data["Images"]):
        s = next(x for x in data["Images"] if x["Id"].partition(":")[2].startswith(row["ID"]))
        rows.append(
            Record(
                row,
                SharedSize=human_size(shared[s["Id"]]["SharedSize"]),
                UniqueSize=human_size(s["Size"] - shared[s["Id"]]["SharedSize"]),
                Containers=str(s["Containers"]),
            )
        )
    out = sys.stdout
    out.write("Images space usage:\n\n")
    out.write(format_rows(None, rows, default=_DF_IMAGES, headers=_DF_HEADERS))
    crow = [
        Record(
            {
                "ID": c["Id"][:12],
                "Image": c["Image"],
                "Command": _quoted(c["Command"]),
                "LocalVolumes": str(sum(m.get("Type") == "volume" for m in c.get("Mounts") or [])),
                "Size": human_size(int(c.get("SizeRw") or 0)),
                "RunningFor": time_ago(float(c["Created"])),
                "Status": c["Status"],
                "Names": ",".join(n.lstrip("/") for n in c["Names"]),
            }
        )
        for c in data["Containers"]
    ]
    out.write("\nContainers space usage:\n\n")
    out.write(
        format_rows(
            None,
            crow,
            default=_DF_CONTAINERS,
            headers={
                "ID": "CONTAINER ID",
                "Image": "IMAGE",
                "Command": "COMMAND",
                "LocalVolumes": "LOCAL VOLUMES",
                "Size": "SIZE",
                "RunningFor": "CREATED",
                "Status": "STATUS",
                "Names": "NAMES",
            },
        )
    )
    vrows = [
        Record(
            {
                "Name": v["Name"],
                "Links": str(v["UsageData"]["RefCount"]),
                "Size": human_size(v["UsageData"]["Size"]),
            }
        )
        for v in data["Volumes"]
    ]
    out.write("\nLocal Volumes space usage:\n\n")
    out.write(
        format_rows(
            None,
            vrows,
            default=_DF_VOLUMES,
            headers={"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"},
        )
    )
    cache = data["BuildCache"]
    # Each layer once (two steps may add the same one).
    total = sum(
        {b["Description"].partition(" layer ")[2] or b["ID"]: b["Size"] for b in cache}.values()
    )
    brows = [
        Record(
            {
                "ID": b["ID"][:25],
                "CacheType": b["Type"],
                "Size": human_size(b["Size"]),
                "CreatedSince": time_ago(created_timestamp(b["CreatedAt"])),
                "LastUsedSince": time_ago(created_timestamp(b["LastUsedAt"])),
                "UsageCount": str(b["UsageCount"]),
                "Shared": "true" if b["Shared"] else "false",
            }
        )
        for b in cache
    ]
    out.write(f"\nBuild cache usage: {human_size(total)}\n\n")
    out.write(
        format_rows(
            None,
            brows,
            default=_DF_CACHE,
            headers={
                "ID": "CACHE ID",
                "CacheType": "CACHE TYPE",
                "Size": "SIZE",
                "CreatedSince": "CREATED",
                "LastUsedSince": "LAST USED",
                "UsageCount": "USAGE",
                "Shared": "SHARED",
            },
        )
    )
    return 0


def _quoted(command: str) -> str:
    text = command if len(command) <= 20 else command[:19] + "…"
    return f'"{text}"'


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.container import confirm
    from portique.engine import system
    from portique.units import human_size

    if not args.force:
        what = [
            "all stopped containers",
            "all networks not used by at least one container",
            "all dangling images"
            if not args.all
            else "all images without at least one container associated to them",
        ]
        if args.volumes:
            what.insert(1, "all anonymous volumes not used by at least one container")
        what.append("all build cache" if args.all else "unused build cache")
        text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in what)
        if not confirm(text.rstrip("\n") + "\n"):
            return 0
    report = system.prune(eng, all=args.all, volumes=args.volumes)
    if report.containers:
        print("Deleted Containers:")
        print("\n".join(report.containers))
        print()
    if report.networks:
        print("Deleted Networks:")
        print("\n".join(report.networks))
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
    if report.build_cache:
        print("Deleted build cache objects:")
        print("\n".join(report.build_cache))
        print()
    print(f"Total reclaimed space: {human_size(report.reclaimed)}")
    return 0


def run(eng: Engine, args: argparse.Namespace) -> int:
    if args.system_command == "df":
        return _df(eng, args)
    if args.system_command == "prune":
        return _prune(eng, args)
    if args.system_command == "migrate":
        from portique.engine import system

        system.migrate(eng)
        return 0
    if args.system_command == "events":
        from portique.cli.docker.commands import events

        return events.run(eng, args)
    from portique.cli.docker.commands import info

    return info.run(eng, args)
