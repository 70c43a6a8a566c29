"""`portique ps` (also `container ls`, `container ps`, `container list`)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine

TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "State": "STATE",
    "Ports": "PORTS",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "Size": "SIZE",
    "LocalVolumes": "LOCAL VOLUMES",
}
CONTEXT = "*formatter.ContainerContext"


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
    from portique.cli.docker.filters import from_flags
    from portique.cli.docker.format import format_rows
    from portique.engine import containers

    filters = from_flags(args.filter)
    if args.format:
        _check_format(args.format)
    listed = containers.list_containers(
        eng,
        all=args.all,
        limit=1 if args.latest else args.last,
        size=args.size,
        filters=filters,
    )
    if args.quiet:
        for c in listed:
            print(c["Id"] if args.no_trunc else c["Id"][:12])
        return 0
    records = [row(c, no_trunc=args.no_trunc) for c in listed]
    sys.stdout.write(
        format_rows(
            args.format,
            records,
            default=TABLE + ("\t{{.Size}}" if args.size else ""),
            headers=HEADERS,
            context=CONTEXT,
            labels=[c["Labels"] for c in listed],
        )
    )
    return 0


def row(c: dict[str, Any], *, no_trunc: bool = False) -> dict[str, Any]:
    """A container summary (the API's JSON) as `ps` shows it."""
    from portique.cli.gotemplate.gofmt import quote
    from portique.units import human_duration, human_size

    cmd = c["Command"]
    if not no_trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    mounts = [m.get("Name") or m.get("Source", "") for m in c["Mounts"]]
    return {
        "ID": c["Id"] if no_trunc else c["Id"][:12],
        "Image": c["Image"],
        # strconv.Quote, as Docker: an image's Cmd may hold escape sequences
        # aimed at the terminal of whoever lists the containers.
        "Command": quote(cmd),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(c["Created"])),
        "RunningFor": f"{human_duration(time.time() - c['Created'])} ago",
        "Status": c["Status"],
        "State": c["State"],
        "Ports": ", ".join(
            f"{p['IP']}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}" for p in c["Ports"]
        ),
        "Names": c["Names"][0].removeprefix("/"),
        "Labels": ",".join(f"{k}={v}" for k, v in c["Labels"].items()),
        "Mounts": ",".join(m for m in mounts if m),
        "Networks": c["HostConfig"]["NetworkMode"],
        "Size": human_size(c["SizeRw"]) if "SizeRw" in c else "",
        "LocalVolumes": str(sum(1 for m in c["Mounts"] if m["Type"] == "volume")),
    }


def _check_format(fmt: str) -> None:
    """Docker checks a --format before listing: on an empty row, so that a bad
    field is an error even when no container is listed."""
    from portique.cli.docker import templates

    tmpl = templates.parse(fmt, prefix="failed to parse template: ")
    empty = templates.context(CONTEXT, dict.fromkeys(HEADERS, ""), {})
    templates.execute(tmpl, empty, prefix="failed to execute template: ")
