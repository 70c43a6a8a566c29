"""`portique volume create|ls|inspect|rm|prune`"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

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


def volume_dict(vol: Any) -> dict[str, Any]:
    import time

    return {
        "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(vol.created)),
        "Driver": vol.driver,
        "Labels": dict(vol.labels) or None,
        "Mountpoint": vol.mountpoint,
        "Name": vol.name,
        "Options": dict(vol.options) or None,
        "Scope": "local",
    }


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import db, volumes
    from portique.engine import options as opt
    from portique.errors import PortiqueError

    conn = eng.db
    cmd = args.volume_command
    if cmd == "create":
        options = dict(o.partition("=")[::2] for o in args.opt)
        try:
            with db.transaction(conn):
                vol, _ = volumes.create_volume(
                    eng,
                    args.name,
                    labels=opt.parse_labels(args.label),
                    driver=args.driver,
                    options=options,
                )
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            return 1  # Docker's status for a refused `volume create`
        print(vol.name)
        return 0
    if cmd in ("ls", "list"):
        from portique.cli.docker.format import format_rows

        rows = db.list_volumes(conn)
        filters = [f.partition("=") for f in args.filter]
        used = {
            v
            for cid in db.iter_ids(conn)
            for v in (x.name for x in db.container_volumes(conn, cid))
        }
        out = []
        for v in rows:
            ok = True
            for key, _, value in filters:
                if key == "name":
                    ok &= value in v.name
                elif key == "dangling":
                    ok &= (v.name not in used) == (value.lower() in ("true", "1"))
                elif key == "label":
                    k, sep, val = value.partition("=")
                    ok &= k in v.labels and (not sep or v.labels[k] == val)
                elif key == "driver":
                    ok &= v.driver == value
                else:
                    raise PortiqueError(f"invalid filter '{key}'")
            if ok:
                out.append(v)
        if args.quiet:
            for v in out:
                print(v.name)
            return 0
        records = [
            {
                "Driver": v.driver,
                "Name": v.name,
                "Mountpoint": v.mountpoint,
                "Scope": "local",
                "Labels": ",".join(f"{k}={x}" for k, x in v.labels.items()),
            }
            for v in out
        ]
        sys.stdout.write(
            format_rows(
                args.format,
                records,
                default=VOLUME_TABLE,
                headers=VOLUME_HEADERS,
                context="*formatter.volumeContext",
                labels=[v.labels for v in out],
            )
        )
        return 0
    if cmd == "inspect":
        from portique.cli.docker.commands.image import print_inspect

        found = []
        status = 0
        for name in args.names:
            got = db.get_volume(conn, name)
            if got is None:
                sys.stderr.write(f"portique: no such volume: {name}\n")
                status = 1
                continue
            found.append(volume_dict(got))
        if found or not args.format:
            status = print_inspect(found, args.format, "volume.Volume") or status
        return status
    if cmd in ("rm", "remove"):
        status = 0
        for name in args.names:
            try:
                volumes.remove_volume(eng, name, force=args.force)
            except PortiqueError as exc:
                sys.stderr.write(f"portique: {exc}\n")
                status = 1
                continue
            print(name)
        return status
    if cmd == "prune":
        if not args.force:
            from portique.cli.docker.commands.container import confirm

            if not confirm(
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            ):
                return 0
        removed = volumes.prune_volumes(eng, all_volumes=args.all)
        if removed:
            print("Deleted Volumes:")
            for n in removed:
                print(n)
            print()
        print("Total reclaimed space: 0B")
        return 0
    return 125
