"""`portique network create|ls|inspect|rm|prune|connect|disconnect`.

Parsing and printing only; the work is portique.engine.networks, over the
network layer (portique.network.networks.Networks).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine

NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="network_command", metavar="COMMAND")

    p = sub.add_parser("create", help="create a network")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("--attachable", action="store_true")  # accepted, meaningless without swarm
    p.add_argument("name")

    for verb in ("ls", "list"):
        p = sub.add_parser(verb, help="list networks")
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("-f", "--filter", action="append", default=[])
        p.add_argument("--format")
        p.add_argument("--no-trunc", action="store_true")

    p = sub.add_parser("inspect", help="show networks in detail")
    p.add_argument("-f", "--format")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("networks", nargs="+")

    for verb in ("rm", "remove"):
        p = sub.add_parser(verb, help="remove networks")
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("networks", nargs="+")

    p = sub.add_parser("prune", help="remove unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])

    p = sub.add_parser("connect", help="connect a container to a network")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip")
    p.add_argument("network")
    p.add_argument("container")

    p = sub.add_parser("disconnect", help="disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")


def _kv(items: list[str], what: str) -> dict[str, str]:
    from portique.errors import InvalidArgument

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} {item!r}")
        out[key] = value if sep else ""
    return out


def run(eng: Engine, args: argparse.Namespace) -> int:
    cmd = args.network_command
    handlers: dict[str, Callable[[Engine, argparse.Namespace], int]] = {
        "create": _create,
        "ls": _ls,
        "list": _ls,
        "inspect": _inspect,
        "rm": _rm,
        "remove": _rm,
        "prune": _prune,
        "connect": _connect,
        "disconnect": _disconnect,
    }
    if cmd is None:
        sys.stdout.write(
            "usage: portique network COMMAND\n\nCommands: connect, create, disconnect,"
            " inspect, ls, prune, rm\n"
        )
        return 0
    return handlers[cmd](eng, args)


def _create(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import networks
    from portique.errors import InvalidArgument
    from portique.network.networks import check_name

    if len(args.subnet) > 1 or len(args.gateway) > 1:
        raise InvalidArgument("only one --subnet and one --gateway per network are supported")
    if not args.ipv6:  # refused first, with status 125
        try:
            check_name(args.name)
        except InvalidArgument as exc:
            sys.stderr.write(f"portique: {exc}\n")
            return 1  # Docker's status for a refused `network create`
    ident = networks.create(
        eng,
        args.name,
        driver=args.driver,
        subnet=args.subnet[0] if args.subnet else None,
        gateway=args.gateway[0] if args.gateway else None,
        internal=args.internal,
        ipv6=args.ipv6,
        labels=_kv(args.label, "label"),
        options=_kv(args.opt, "option"),
    )
    print(ident)
    return 0


def _ls(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.filters import from_flags
    from portique.cli.docker.format import format_rows
    from portique.engine import networks

    listed = networks.list_networks(eng, from_flags(args.filter))
    if args.quiet:
        for n in listed:
            print(n["Id"] if args.no_trunc else n["Id"][:12])
        return 0
    rows = [
        {
            "ID": n["Id"] if args.no_trunc else n["Id"][:12],
            "Name": n["Name"],
            "Driver": n["Driver"],
            "Scope": n["Scope"],
            "IPv6": str(n["EnableIPv6"]).lower(),
            "Internal": str(n["Internal"]).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in n["Labels"].items()),
            "CreatedAt": n["Created"],
        }
        for n in listed
    ]
    sys.stdout.write(
        format_rows(
            args.format,
            rows,
            default=NETWORK_TABLE,
            headers=NETWORK_HEADERS,
            context="*network.networkContext",
            labels=[n["Labels"] for n in listed],
        )
    )
    return 0


def _inspect(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.image import print_inspect
    from portique.cli.docker.each import collect, report_missings
    from portique.engine import networks

    found, missing = collect(args.networks, lambda ref: networks.inspect(eng, ref))
    status = print_inspect(found, args.format, "network.Inspect")
    return report_missings(missing) or status


def _rm(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.each import Missing, for_each
    from portique.engine import networks

    return for_each(
        args.networks,
        lambda ref: networks.remove(eng, ref),
        missing=Missing.SKIP if args.force else Missing.FAIL,
        keep_exit_code=True,
    )


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import networks

    if not args.force and sys.stdin.isatty():
        sys.stdout.write(
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from portique.cli.docker.filters import from_flags

    removed = networks.prune(eng, from_flags(args.filter))
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0


def _connect(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import networks

    networks.connect(eng, args.network, args.container, aliases=list(args.alias), ip=args.ip)
    return 0


def _disconnect(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import networks

    networks.disconnect(eng, args.network, args.container, force=args.force)
    return 0
