"""`portique volume create|ls|inspect|rm|prune`"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine

VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUME_HEADERS = {
    "Driver": "DRIVER",
    "Name": "VOLUME NAME",
    "Mountpoint": "MOUNTPOINT",
    "Scope": "SCOPE",
    "Labels": "LABELS",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="volume_command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("create")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("name", nargs="?", default="")
    p = sub.add_parser("ls", aliases=["list"])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default=None)
    p = sub.add_parser("inspect")
    p.add_argument("-f", "--format", default=None)
    p.add_argument("names", nargs="+")
    p = sub.add_parser("rm", aliases=["remove"])
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+")
    p = sub.add_parser("prune")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--filter", action="append", default=[])


def run(eng: Engine, args: argparse.Namespace) -> int:
    cmd = args.volume_command
    if cmd == "create":
        return _create(eng, args)
    if cmd in ("ls", "list"):
        return _ls(eng, args)
    if cmd == "inspect":
        return _inspect(eng, args)
    if cmd in ("rm", "remove"):
        return _rm(eng, args)
    return _prune(eng, args)


def _create(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import options as opt
    from portique.engine import volumes
    from portique.errors import PortiqueError

    try:
        vol = volumes.create(
            eng,
            args.name,
            driver=args.driver,
            labels=opt.parse_labels(args.label),
            options=dict(o.partition("=")[::2] for o in args.opt),
        )
    except PortiqueError as exc:
        sys.stderr.write(f"portique: {exc}\n")
        return 1  # Docker's status for a refused `volume create`
    print(vol["Name"])
    return 0


def _ls(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.filters import from_flags
    from portique.cli.docker.format import format_rows
    from portique.engine import volumes

    listed = volumes.list_volumes(eng, from_flags(args.filter))
    if args.quiet:
        for v in listed:
            print(v["Name"])
        return 0
    records = [
        {
            "Driver": v["Driver"],
            "Name": v["Name"],
            "Mountpoint": v["Mountpoint"],
            "Scope": v["Scope"],
            "Labels": ",".join(f"{k}={x}" for k, x in (v["Labels"] or {}).items()),
        }
        for v in listed
    ]
    sys.stdout.write(
        format_rows(
            args.format,
            records,
            default=VOLUME_TABLE,
            headers=VOLUME_HEADERS,
            context="*formatter.volumeContext",
            labels=[v["Labels"] or {} for v in listed],
        )
    )
    return 0


def _inspect(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import print_inspect
    from portique.cli.docker.each import collect, report_missings
    from portique.engine import volumes

    found, missing = collect(args.names, lambda name: volumes.inspect(eng, name))
    status = 0
    if found or not args.format:
        status = print_inspect(found, args.format, "volume.Volume")
    return report_missings(missing) or status


def _rm(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.each import for_each
    from portique.engine import volumes

    # With -f a missing volume is removed already: its name is printed, as Docker does.
    return for_each(args.names, lambda name: volumes.remove_volume(eng, name, force=args.force))


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import volumes

    if not args.force:
        from portique.cli.docker.commands.container import confirm

        if not confirm(
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        ):
            return 0
    from portique.cli.docker.filters import from_flags

    removed, reclaimed = volumes.prune_report(
        eng, all_volumes=args.all, filters=from_flags(args.filter)
    )
    if removed:
        print("Deleted Volumes:")
        for n in removed:
            print(n)
        print()
    from portique.units import human_size

    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
